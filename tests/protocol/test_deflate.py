"""permessage-deflate negotiation."""

from __future__ import annotations

import pytest

from trio_mws.protocol import CLIENT_OFFER, DeflateParameters, parse_answer


def test_offer() -> None:
    assert CLIENT_OFFER == "permessage-deflate; client_max_window_bits"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("permessage-deflate", DeflateParameters()),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            DeflateParameters(server_no_context_takeover=True, client_no_context_takeover=True),
        ),
        (
            'permessage-deflate;server_max_window_bits=10; client_max_window_bits="8"',
            DeflateParameters(server_max_window_bits=10, client_max_window_bits=8),
        ),
    ],
)
def test_valid_answers(answer: str, expected: DeflateParameters) -> None:
    assert parse_answer(answer) == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("x-webkit-deflate-frame", "did not offer"),
        ("permessage-deflate, permessage-deflate", "several extensions"),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", "repeated"),
        ("permessage-deflate; server_no_context_takeover=1", "takes no value"),
        ("permessage-deflate; client_max_window_bits", "needs a value"),
        ("permessage-deflate; server_max_window_bits=7", "needs a value"),
        ("permessage-deflate; server_max_window_bits=16", "needs a value"),
        ("permessage-deflate; server_max_window_bits=010", "needs a value"),
        ("permessage-deflate; server_max_window_bits=", "needs a value"),
        ("permessage-deflate; mystery=1", "unknown"),
        ("permessage-deflate; ", "malformed"),
    ],
)
def test_invalid_answers(answer: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_answer(answer)
