"""Hostile HTTP answers to the upgrade request and to a proxy's CONNECT.

Every answer comes from a real socket (a scripted server or proxy on 127.0.0.1). Whatever the
bytes, ``connect`` ends with a ``ConnectError`` (a ``HandshakeError`` when the server
answered) — never a bare ``ValueError`` — in bounded memory and time.
"""

from __future__ import annotations

import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import trio_mws
from trio_mws import ConnectError, HandshakeError, WebErrorStatus

from .mws_helpers import peak_memory
from .opening_helpers import RawServer, answer
from .rawserver import RawPeer, serve_raw

INVALID = WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE
MiB = 1024 * 1024


async def _connect_error(url: str, **options: object) -> ConnectError:
    with trio.fail_after(30), pytest.raises(ConnectError) as info:  # generous: a hang fails
        async with trio_mws.open_message_websocket(url, **options):  # type: ignore[arg-type]
            pytest.fail("connected although the server did not upgrade")
    return info.value


# -- strict ASCII digits ----------------------------------------------------------------------

# Latin-1 bytes that str.isdigit() takes for digits but int() refuses: ², ³, ¹.
LOOKALIKES = [b"\xb2", b"\xb3", b"\xb9"]


@pytest.mark.parametrize("digit", LOOKALIKES, ids=repr)
async def test_status_code_with_digit_lookalikes(raw_server: RawServer, digit: bytes) -> None:
    async def handler(peer: RawPeer) -> None:
        await answer(peer, b"HTTP/1.1 1" + digit + b"1 Switching Protocols\r\n\r\n")

    error = await _connect_error(await raw_server(handler))
    assert isinstance(error, HandshakeError)
    assert error.status is INVALID
    assert error.status_code is None


@pytest.mark.parametrize("digit", LOOKALIKES, ids=repr)
async def test_content_length_with_digit_lookalikes(raw_server: RawServer, digit: bytes) -> None:
    async def handler(peer: RawPeer) -> None:
        await answer(peer, b"HTTP/1.1 404 Not Found\r\nContent-Length: " + digit + b"\r\n\r\nx")

    error = await _connect_error(await raw_server(handler))
    assert error.status is INVALID


async def test_chunk_size_with_digit_lookalikes_keeps_the_status(raw_server: RawServer) -> None:
    # The head is valid: the status it carries is what the user needs; the body is cut.
    async def handler(peer: RawPeer) -> None:
        await answer(
            peer,
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n\xb2\r\ncd\r\n",
        )

    error = await _connect_error(await raw_server(handler))
    assert isinstance(error, HandshakeError)
    assert (error.status, error.status_code, error.body) == (
        WebErrorStatus.SERVICE_UNAVAILABLE,
        503,
        b"ab",
    )


_TEXT = st.binary(max_size=12) | st.sampled_from([b"\xb2", b"1\xb23", b"+1", b"-1", b"0x10", b""])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=_TEXT, length=_TEXT, chunk=_TEXT)
@example(code=b"1\xb23", length=b"0", chunk=b"")
@example(code=b"404", length=b"\xb2", chunk=b"")
@example(code=b"404", length=b"", chunk=b"\xb2")
async def test_any_status_and_length_text_is_a_connect_error(
    code: bytes, length: bytes, chunk: bytes
) -> None:
    response = (
        b"HTTP/1.1 " + code + b" Whatever\r\nContent-Length: " + length + b"\r\n\r\n"
        b"HTTP/1.1 404 X\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + b"\r\n"
    )

    async def handler(peer: RawPeer) -> None:
        await answer(peer, response)

    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_raw, handler)
        error = await _connect_error(url)
        nursery.cancel_scope.cancel()
    assert error.status is not WebErrorStatus.UNKNOWN


# -- bounded head and body, whatever the framing ----------------------------------------------


HUGE = 300 * MiB
FRAMINGS = {
    "chunked": b"Transfer-Encoding: chunked\r\n\r\n" + f"{HUGE:x}\r\n".encode(),
    "content-length": f"Content-Length: {HUGE}\r\n\r\n".encode(),
    "until-eof": b"Connection: close\r\n\r\n",
}


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_huge_error_body_is_neither_buffered_nor_waited_for(
    raw_server: RawServer, framing: str
) -> None:
    sent = 0
    piece = bytes(range(256)) * 4096  # 1 MiB, sent again and again (no allocation per send)

    async def handler(peer: RawPeer) -> None:
        nonlocal sent
        await answer(peer, b"HTTP/1.1 500 Oops\r\n" + FRAMINGS[framing])
        while sent < HUGE:
            await peer.send(piece)  # ends when the client stops reading and closes
            sent += len(piece)

    url = await raw_server(handler)
    with peak_memory() as peak:
        error = await _connect_error(url)
    assert isinstance(error, HandshakeError)
    assert (error.status, error.status_code) == (WebErrorStatus.INTERNAL_SERVER_ERROR, 500)
    assert 0 < len(error.body) <= 64 * 1024
    assert piece.startswith(error.body)
    # Prompt: the client gave up after the 64 KiB it keeps, not after 300 MiB (what the
    # server got rid of beyond that sits in socket buffers).
    assert sent < 32 * MiB
    assert peak[0] < 4 * MiB


async def test_stalled_error_body_keeps_the_status(
    raw_server: RawServer, autojump_clock: object
) -> None:
    # 100 bytes announced, 3 sent, then silence: the 404 is what the user must see, promptly,
    # not a TIMEOUT after connect_timeout.
    async def handler(peer: RawPeer) -> None:
        await answer(peer, b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\nabc")
        await trio.sleep_forever()

    url = await raw_server(handler)
    start = trio.current_time()
    error = await _connect_error(url, connect_timeout=60)
    assert isinstance(error, HandshakeError)
    assert (error.status, error.status_code, error.body) == (
        WebErrorStatus.NOT_FOUND,
        404,
        b"abc",
    )
    assert trio.current_time() - start < 10


async def test_endless_header_line_is_invalid(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 101 Switching Protocols\r\nX-Long: ")
        for _ in range(64):  # 4 MiB without a line end: far beyond any head we accept
            await peer.send(b"a" * 65536)

    error = await _connect_error(await raw_server(handler))
    assert error.status is INVALID


async def test_interim_responses_before_the_101(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        await peer.send(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        )
        await peer.send(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {peer.accept_value()}\r\n"
                "X-Mark: final\r\n\r\n"
            ).encode()
        )
        await peer.read_close()

    async with trio_mws.open_message_websocket(await raw_server(handler)) as ws:
        response = ws.information.handshake_response
        assert response is not None
        assert response.status_code == 101
        assert response.get("x-mark") == "final"


# -- the proxy's answer to CONNECT ------------------------------------------------------------


async def _through_proxy(raw_server: RawServer, answer_bytes: bytes) -> ConnectError:
    async def proxy(peer: RawPeer) -> None:
        await answer(peer, answer_bytes)

    proxy_url = (await raw_server(proxy)).replace("ws://", "http://")
    return await _connect_error("ws://example.test/", proxy=proxy_url)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"HTTP/1.1 2\xb200 Connection established\r\n\r\n", id="status-lookalike"),
        pytest.param(b"HTTP/1.1 407 Auth\r\nContent-Length: \xb2\r\n\r\n", id="length-lookalike"),
        pytest.param(b"HTTP/1.1 200 OK\r\nbroken header line\r\n\r\n", id="bad-header"),
        pytest.param(b"SOCKS? \r\n\r\n", id="not-http"),
    ],
)
async def test_malformed_connect_answer(raw_server: RawServer, response: bytes) -> None:
    error = await _through_proxy(raw_server, response)
    assert error.status is INVALID


async def test_connect_refusal_with_huge_chunked_body(raw_server: RawServer) -> None:
    sent = 0

    async def proxy(peer: RawPeer) -> None:
        nonlocal sent
        await answer(
            peer, b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n12c00000\r\n"
        )
        piece = b"z" * MiB
        while sent < HUGE:
            await peer.send(piece)
            sent += len(piece)

    proxy_url = (await raw_server(proxy)).replace("ws://", "http://")
    with peak_memory() as peak:
        error = await _connect_error("ws://example.test/", proxy=proxy_url)
    assert isinstance(error, HandshakeError)
    assert (error.status, error.status_code) == (WebErrorStatus.BAD_GATEWAY, 502)
    assert error.body == b"z" * len(error.body)
    assert sent < 32 * MiB
    assert peak[0] < 4 * MiB
