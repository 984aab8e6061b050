"""The engine's sending side, without sockets: calls in, frames out."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from trio_mws.enums import SocketMessageType, WebSocketState
from trio_mws.protocol import ClientEngine, DeflateParameters
from trio_mws.protocol.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
)

from .wire import parse_client_frames

TEXT = SocketMessageType.UTF8
BINARY = SocketMessageType.BINARY


def sent(engine: ClientEngine) -> list[tuple[int, bool, bool, bytes]]:
    return parse_client_frames(b"".join(engine.data_to_send()))


def engine(**kwargs: Any) -> ClientEngine:
    return ClientEngine(max_message_size=None, partial=False, **kwargs)


def test_messages_and_fragments() -> None:
    client = engine()
    assert client.send_data(TEXT, "héllo".encode(), fin=True) == 6
    assert client.send_data(BINARY, b"a", fin=False) == 1
    client.send_ping(b"keepalive")  # control frames may interleave
    assert client.send_data(TEXT, b"b", fin=False) == 1  # a continuation: type ignored
    assert client.send_data(BINARY, b"", fin=True) == 0
    assert sent(client) == [
        (OP_TEXT, True, False, "héllo".encode()),
        (OP_BINARY, False, False, b"a"),
        (OP_PING, True, False, b"keepalive"),
        (OP_CONTINUATION, False, False, b"b"),
        (OP_CONTINUATION, True, False, b""),
    ]
    assert client.bytes_sent == 8
    assert client.data_to_send() == []


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 16 * 1024, 300_000])
def test_frame_lengths_and_large_payloads_stay_separate(size: int) -> None:
    client = engine()
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    client.send_data(BINARY, payload, fin=True)
    buffers = client.data_to_send()
    if size >= 16 * 1024:
        assert len(buffers) > 1  # the header apart from the payload, never joined
    assert parse_client_frames(b"".join(buffers)) == [(OP_BINARY, True, False, payload)]


def test_every_frame_gets_a_fresh_mask() -> None:
    client = engine()
    for _ in range(2000):
        client.send_data(BINARY, b"", fin=True)
    keys = {buffer[2:6] for buffer in client.data_to_send()}
    assert len(keys) > 1990  # random 32-bit keys: collisions are very unlikely


def test_compressed_messages_with_and_without_context_takeover() -> None:
    for takeover in (True, False):
        client = engine(deflate=DeflateParameters(client_no_context_takeover=not takeover))
        message = b"compress me " * 100
        for _ in range(3):
            client.send_data(TEXT, message, fin=True)
        frames = sent(client)
        decompressor = zlib.decompressobj(-15)
        for index, (opcode, fin, rsv1, payload) in enumerate(frames):
            assert (opcode, fin, rsv1) == (OP_TEXT, True, True)
            if not takeover:
                decompressor = zlib.decompressobj(-15)
            assert decompressor.decompress(payload + b"\x00\x00\xff\xff") == message
            if takeover and index:
                assert len(payload) < len(frames[0][3])  # the context is reused
        assert client.bytes_sent == 3 * len(message)  # uncompressed, issue 7 defect 7


def test_compressed_fragmented_message() -> None:
    client = engine(deflate=DeflateParameters(client_max_window_bits=9))
    client.send_data(BINARY, b"one " * 50, fin=False)
    client.send_data(BINARY, b"two " * 50, fin=True)
    frames = sent(client)
    assert [(op, fin, rsv1) for op, fin, rsv1, _ in frames] == [
        (OP_BINARY, False, True),
        (OP_CONTINUATION, True, False),
    ]
    stream = b"".join(payload for *_, payload in frames) + b"\x00\x00\xff\xff"
    assert zlib.decompressobj(-9).decompress(stream) == b"one " * 50 + b"two " * 50


def test_close_codes_checked_before_sending() -> None:
    client = engine()
    for code in (999, 1004, 1005, 1006, 1015, 2000, 5000):
        with pytest.raises(ValueError, match="may not be sent"):
            client.send_close(code)
    with pytest.raises(ValueError, match="123"):
        client.send_close(1000, "r" * 124)
    with pytest.raises(ValueError, match="needs a close code"):
        client.send_close(None, "reason")
    assert client.data_to_send() == []
    assert client.state.name == "OPEN"
    client.send_close(1014, "é" * 61)
    assert sent(client) == [(OP_CLOSE, True, False, b"\x03\xf6" + "é".encode() * 61)]
    assert client.state is WebSocketState.CLOSING
    with pytest.raises(RuntimeError):
        client.send_close(1000)
    with pytest.raises(RuntimeError):
        client.send_data(BINARY, b"x", fin=True)
    with pytest.raises(RuntimeError):
        client.send_ping()


def test_empty_close_and_control_payload_limit() -> None:
    client = engine()
    with pytest.raises(ValueError, match="125"):
        client.send_ping(b"p" * 126)
    client.send_pong(b"p" * 125)
    client.send_close()
    assert sent(client) == [(OP_PONG, True, False, b"p" * 125), (OP_CLOSE, True, False, b"")]


def test_local_failure() -> None:
    client = engine()
    client.fail(1011, "keepalive timeout")
    assert client.state is WebSocketState.CLOSING
    assert sent(client) == [(OP_CLOSE, True, False, b"\x03\xf3keepalive timeout")]
    client.fail(1011)  # a close frame was sent already: nothing more
    assert client.data_to_send() == []


def test_an_8_bit_client_window_means_uncompressed_messages() -> None:
    """zlib has no 8-bit raw window: rather than compress with a larger window than the
    server allows, we send uncompressed messages (RSV1 clear), as RFC 7692 permits."""
    client = engine(deflate=DeflateParameters(client_max_window_bits=8))
    client.send_data(TEXT, b"plain " * 50, fin=True)
    assert sent(client) == [(OP_TEXT, True, False, b"plain " * 50)]
