"""permessage-deflate (RFC 7692): negotiation, compressed traffic both ways, hostile
compressed frames and decompression bombs.

Real peer: the ``websockets`` server (``websockets_url``). Scripted peers: raw servers that
negotiate by hand and compress with :mod:`zlib` themselves.
"""

from __future__ import annotations

import functools
import os
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trio

import trio_mws
from trio_mws import (
    ConnectionClosed,
    HandshakeError,
    MessageReceived,
    MessageTooBig,
    MessageWebSocketReceiveMode,
    SocketMessageType,
    WebErrorStatus,
)

from .mws_helpers import ServerLog, peak_memory, read_frame
from .rawserver import Handler, RawPeer, close_payload, frame

RawServer = Callable[[Handler], Awaitable[str]]

PROMPT = 5.0
MiB = 1024 * 1024
GiB = 1024 * MiB
TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; stripped on the wire (RFC 7692 7.2.1)
RSV1 = 4  # ``rsv`` argument of ``frame``: bit 4 of the first byte

FULL = MessageWebSocketReceiveMode.FULL_MESSAGE
PARTIAL = MessageWebSocketReceiveMode.PARTIAL_MESSAGE
UTF8 = SocketMessageType.UTF8
BINARY = SocketMessageType.BINARY


# -- helpers ------------------------------------------------------------------------------------


def deflate(compressor: zlib._Compress, data: bytes) -> bytes:
    """One message's compressed payload: compress, sync flush, strip the 00 00 ff ff."""
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[: -len(TAIL)]


def compressor(bits: int = 15) -> zlib._Compress:
    return zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)


def inflate(decompressor: zlib._Decompress, payload: bytes) -> bytes:
    return decompressor.decompress(payload + TAIL)


async def read_frame_rsv(peer: RawPeer) -> tuple[bool, int, int, bytes]:
    """Read one client frame: (fin, rsv bits, opcode, unmasked payload)."""
    received = await read_frame(peer)
    return received.fin, received.rsv, received.opcode, received.payload


def extension_line(value: str | None) -> str:
    return "" if value is None else f"Sec-WebSocket-Extensions: {value}\r\n"


@functools.cache
def zeros_unit(size: int) -> bytes:
    """``size`` zero bytes, deflated from an empty window and ended by a full flush.

    A full flush leaves no references to earlier data, so ``unit * n`` is a valid deflate
    stream of ``n * size`` zeros: a bomb of any size costs one small compression.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    unit = c.compress(bytes(size)) + c.flush(zlib.Z_FULL_FLUSH)
    assert unit.endswith(TAIL)
    return unit


def bomb_header(compressed_length: int) -> bytes:
    """FIN + RSV1 + binary, 8-byte length."""
    return struct.pack("!BBQ", 0x80 | 0x40 | 2, 127, compressed_length)


def bomb(total: int, unit_size: int = 16 * MiB) -> bytes:
    """One compressed message payload that inflates to ``total`` zero bytes."""
    assert total % unit_size == 0
    return (zeros_unit(unit_size) * (total // unit_size))[: -len(TAIL)]


# -- against a real peer: websockets ------------------------------------------------------------


async def test_negotiated_and_shown_in_information(websockets_url: str) -> None:
    async with trio_mws.open_message_websocket(websockets_url, compression=True) as ws:
        response = ws.information.handshake_response
        assert response is not None and response.status_code == 101
        extensions = response.get("Sec-WebSocket-Extensions") or ""
        assert extensions.split(";")[0].strip() == "permessage-deflate"
        await ws.send("ping")
        assert (await ws.receive()).text == "ping"


async def test_not_offered_without_compression(websockets_url: str) -> None:
    async with trio_mws.open_message_websocket(websockets_url) as ws:
        response = ws.information.handshake_response
        assert response is not None
        assert response.get("Sec-WebSocket-Extensions") is None
        await ws.send("plain")
        assert (await ws.receive()).text == "plain"


async def test_declined_by_the_server(echo_url: str) -> None:
    """trio-websocket does not do permessage-deflate: the connection works uncompressed."""
    async with trio_mws.open_message_websocket(echo_url, compression=True) as ws:
        response = ws.information.handshake_response
        assert response is not None and response.get("Sec-WebSocket-Extensions") is None
        await ws.send("plain")
        assert (await ws.receive()).text == "plain"


@pytest.mark.parametrize(
    "message",
    [
        "",
        "h",
        "héllo wörld ☃ 𝄞",
        "x" * 100_000,
        b"",
        b"\x00",
        bytes(range(256)) * 10,
        os.urandom(100_000),
    ],
    ids=["empty-text", "1-char", "unicode", "100k-text", "empty-bin", "nul", "pattern", "random"],
)
async def test_round_trip(websockets_url: str, message: str | bytes) -> None:
    async with trio_mws.open_message_websocket(websockets_url, compression=True) as ws:
        for _ in range(3):  # context takeover across messages
            await ws.send(message)
            event = await ws.receive()
            if isinstance(message, str):
                assert event.message_type is UTF8 and event.text == message
            else:
                assert event.message_type is BINARY and event.data == message
            assert event.is_message_complete


async def test_large_compressible_messages(websockets_url: str) -> None:
    text = ("All work and no play makes Jack a dull boy. " * 200_000)[: 8 * MiB]
    binary = bytes(16 * MiB)  # exactly max_message_size
    async with trio_mws.open_message_websocket(websockets_url, compression=True) as ws:
        await ws.send(text)
        await ws.send(binary)
        assert (await ws.receive()).text == text
        assert (await ws.receive()).data == binary


async def test_many_messages_in_flight(websockets_url: str) -> None:
    messages = [f"message {i}: " + "abc" * (i % 50) for i in range(500)]
    async with trio_mws.open_message_websocket(websockets_url, compression=True) as ws:

        async def sender() -> None:
            for message in messages:
                await ws.send(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            received = [(await ws.receive()).text for _ in messages]
    assert received == messages


async def test_fragmented_send_is_one_compressed_message(websockets_url: str) -> None:
    async with trio_mws.open_message_websocket(websockets_url, compression=True) as ws:
        assert await ws.send_nonfinal_frame("héllo ") == len("héllo ".encode())
        await ws.send_nonfinal_frame("wörld " * 1000)
        await ws.send_final_frame("!")
        event = await ws.receive()
        assert event.text == "héllo " + "wörld " * 1000 + "!"
        await ws.send_nonfinal_frame(b"\x01" * 70_000)
        await ws.send_final_frame(b"")
        assert (await ws.receive()).data == b"\x01" * 70_000


async def test_partial_mode_with_compression(websockets_url: str) -> None:
    text = "ünïcödé " * (MiB // 4)  # ~2.25 MiB of UTF-8 with 2-byte characters
    async with trio_mws.open_message_websocket(
        websockets_url, compression=True, receive_mode=PARTIAL, max_message_size=100_000
    ) as ws:
        await ws.send(text)
        chunks: list[MessageReceived] = []
        while not chunks or not chunks[-1].is_message_complete:
            chunks.append(await ws.receive())
    assert len(chunks) > 1
    assert all(len(chunk.data) <= 100_000 for chunk in chunks)
    assert all(not chunk.is_message_complete for chunk in chunks[:-1])
    assert "".join(chunk.text for chunk in chunks) == text  # each chunk decodes on its own


# -- negotiation against scripted servers -------------------------------------------------------


def answering_server(log: ServerLog, answer: str | None) -> Handler:
    """Answer the upgrade with ``answer`` as Sec-WebSocket-Extensions, then wait for EOF."""

    async def handler(peer: RawPeer) -> None:
        try:
            await peer.read_request()
            log.request_extensions = peer.request_header("Sec-WebSocket-Extensions")
            response = (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {peer.accept_value()}\r\n"
                f"{extension_line(answer)}\r\n"
            )
            await peer.send(response.encode("latin-1"))
            with trio.move_on_after(PROMPT):
                log.eof = await peer.wait_eof()
        finally:
            log.done.set()

    return handler


BAD_ANSWERS = [
    ("unknown-param", "permessage-deflate; foo=1"),
    ("unknown-flag", "permessage-deflate; foo"),
    ("server-bits-7", "permessage-deflate; server_max_window_bits=7"),
    ("server-bits-16", "permessage-deflate; server_max_window_bits=16"),
    ("server-bits-0", "permessage-deflate; server_max_window_bits=0"),
    ("server-bits-negative", "permessage-deflate; server_max_window_bits=-9"),
    ("server-bits-text", "permessage-deflate; server_max_window_bits=ten"),
    ("server-bits-leading-zero", "permessage-deflate; server_max_window_bits=09"),
    ("server-bits-superscript-digit", "permessage-deflate; server_max_window_bits=1\xb2"),
    ("client-bits-superscript-digit", "permessage-deflate; client_max_window_bits=\xb9\xb2"),
    ("server-bits-no-value", "permessage-deflate; server_max_window_bits"),
    ("server-bits-empty", "permessage-deflate; server_max_window_bits="),
    ("client-bits-7", "permessage-deflate; client_max_window_bits=7"),
    ("client-bits-16", "permessage-deflate; client_max_window_bits=16"),
    ("client-bits-no-value", "permessage-deflate; client_max_window_bits"),
    (
        "duplicate-flag",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    ),
    ("duplicate-bits", "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"),
    ("flag-with-value", "permessage-deflate; client_no_context_takeover=1"),
    ("extension-twice", "permessage-deflate, permessage-deflate"),
    ("unknown-extension", "x-webkit-deflate-frame"),
    ("known-and-unknown", "permessage-deflate, x-foo"),
]


@pytest.mark.parametrize("answer", [pytest.param(answer, id=name) for name, answer in BAD_ANSWERS])
async def test_invalid_extension_answer_fails_the_handshake(
    raw_server: RawServer, answer: str
) -> None:
    log = ServerLog()
    url = await raw_server(answering_server(log, answer))
    with trio.fail_after(PROMPT), pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url, compression=True):
            pytest.fail("connected despite an invalid extension answer")
    assert info.value.status is WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE
    assert info.value.status_code == 101
    with trio.fail_after(PROMPT):
        await log.done.wait()
    assert log.request_extensions is not None
    assert log.request_extensions.startswith("permessage-deflate")
    assert log.eof is not None, "the client kept the TCP connection open"


@pytest.mark.parametrize(
    "answer",
    ["permessage-deflate", "permessage-deflate; server_no_context_takeover", "x-foo"],
)
async def test_extension_we_did_not_offer_fails_the_handshake(
    raw_server: RawServer, answer: str
) -> None:
    log = ServerLog()
    url = await raw_server(answering_server(log, answer))
    with trio.fail_after(PROMPT), pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url):
            pytest.fail("connected despite an unrequested extension")
    assert info.value.status is WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE
    with trio.fail_after(PROMPT):
        await log.done.wait()
    assert log.request_extensions is None  # nothing was offered
    assert log.eof is not None


@dataclass(frozen=True)
class Negotiated:
    """A valid answer and the parameters a server then uses."""

    answer: str
    server_bits: int = 15  # the window the server compresses with
    client_bits: int = 15  # the window the client must keep within
    server_no_context: bool = False
    client_no_context: bool = False
    # zlib cannot compress within an 8-bit raw window: the client then sends its messages
    # uncompressed (RFC 7692 lets a sender choose per message).
    client_compresses: bool = True


VALID_ANSWERS = [
    ("plain", Negotiated("permessage-deflate")),
    (
        "server-no-context",
        Negotiated("permessage-deflate; server_no_context_takeover", server_no_context=True),
    ),
    (
        "client-no-context",
        Negotiated("permessage-deflate; client_no_context_takeover", client_no_context=True),
    ),
    (
        "both-no-context",
        Negotiated(
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
            server_no_context=True,
            client_no_context=True,
        ),
    ),
    ("server-bits-9", Negotiated("permessage-deflate; server_max_window_bits=9", server_bits=9)),
    ("server-bits-8", Negotiated("permessage-deflate; server_max_window_bits=8", server_bits=9)),
    ("client-bits-9", Negotiated("permessage-deflate; client_max_window_bits=9", client_bits=9)),
    (
        "client-bits-8",
        Negotiated(
            "permessage-deflate; client_max_window_bits=8", client_bits=9, client_compresses=False
        ),
    ),
    (
        "all-params",
        Negotiated(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=11",
            server_bits=10,
            client_bits=11,
            server_no_context=True,
            client_no_context=True,
        ),
    ),
    ("quoted", Negotiated('permessage-deflate; server_max_window_bits="10"', server_bits=10)),
    (
        "spaces",
        Negotiated("permessage-deflate ;server_max_window_bits = 12 ", server_bits=12),
    ),
]


@pytest.mark.parametrize(
    "params", [pytest.param(params, id=name) for name, params in VALID_ANSWERS]
)
async def test_negotiated_parameters_are_honoured(
    raw_server: RawServer, params: Negotiated
) -> None:
    """The client decodes what the server compresses with the negotiated window and context
    mode, and compresses within its own negotiated window and context mode (the server checks
    with a decoder that is exactly as small and forgetful as negotiated)."""
    # Repeats at a distance of 1000 bytes: beyond a 512-byte window, so a client that ignores
    # client_max_window_bits=9 produces references the server cannot decode.
    block = os.urandom(1000)
    client_message = block * 8
    server_texts = ["héllo " * 300, "héllo " * 300, "wörld " * 300]
    log = ServerLog()
    received_by_server: list[tuple[bool, int, int, bytes]] = []

    async def handler(peer: RawPeer) -> None:
        try:
            await peer.accept(extension_line(params.answer))
            log.request_extensions = peer.request_header("Sec-WebSocket-Extensions")
            c = compressor(params.server_bits)
            wire = b""
            for text in server_texts:
                if params.server_no_context:
                    c = compressor(params.server_bits)
                wire += frame(1, deflate(c, text.encode()), rsv=RSV1)
            await peer.send(wire)
            d = zlib.decompressobj(-params.client_bits)
            for _ in range(2):
                fin, rsv, opcode, payload = await read_frame_rsv(peer)
                if params.client_no_context:
                    d = zlib.decompressobj(-params.client_bits)
                received_by_server.append(
                    (fin, rsv, opcode, inflate(d, payload) if rsv else payload)
                )
            await peer.send(frame(8, close_payload(1000)))
            log.close_code = await peer.read_close()
            await peer.stream.aclose()
        finally:
            log.done.set()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url, compression=True) as ws:
            received = [(await ws.receive()).text for _ in server_texts]
            await ws.send(client_message)
            await ws.send(client_message)
            rest = [event async for event in ws.events()]
        await log.done.wait()
    assert received == server_texts
    assert rest == [trio_mws.Closed(1000, "", initiated_locally=False)]
    rsv = RSV1 if params.client_compresses else 0
    assert received_by_server == [(True, rsv, 2, client_message)] * 2
    assert log.close_code == 1000


async def test_compressed_frames_from_a_raw_server(raw_server: RawServer) -> None:
    """Fragmented compressed messages (RSV1 on the first frame only), empty fragments,
    uncompressed messages among compressed ones, empty compressed messages."""
    text = "Zürich ☃ " * 5000
    c = compressor()
    payload = deflate(c, text.encode())
    third = len(payload) // 3
    wire = (
        frame(1, payload[:third], fin=False, rsv=RSV1)
        + frame(0, payload[third : 2 * third], fin=False)
        + frame(0, b"", fin=False)
        + frame(0, payload[2 * third :])
        + frame(2, b"uncompressed \x00\x01")
        + frame(2, deflate(c, b""), rsv=RSV1)
        + frame(2, b"\x00", rsv=RSV1)  # the single-byte empty message of RFC 7692 7.2.3.6
        + frame(1, deflate(c, text.encode()), rsv=RSV1)  # back-references to the first copy
    )

    async def handler(peer: RawPeer) -> None:
        await peer.accept(extension_line("permessage-deflate"))
        await peer.send(wire)
        assert await peer.read_close() == 1000
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url, compression=True) as ws:
            events = [await ws.receive() for _ in range(5)]
    assert events == [
        MessageReceived(UTF8, text.encode()),
        MessageReceived(BINARY, b"uncompressed \x00\x01"),
        MessageReceived(BINARY, b""),
        MessageReceived(BINARY, b""),
        MessageReceived(UTF8, text.encode()),
    ]


@pytest.mark.parametrize("mode", [FULL, PARTIAL], ids=["full", "partial"])
@pytest.mark.parametrize(
    "control",
    [frame(9, b"mid-message ping"), frame(10, b"unsolicited pong")],
    ids=["ping", "pong"],
)
async def test_control_frame_inside_a_compressed_fragmented_message(
    raw_server: RawServer, control: bytes, mode: MessageWebSocketReceiveMode
) -> None:
    """RFC 6455 5.4: control frames may come between the fragments of a message; the
    message stays compressed (RSV1 was on its first frame) after the control frame."""
    text = "Zürich ☃ " * 500
    payload = deflate(compressor(), text.encode())
    half = len(payload) // 2
    wire = (
        frame(1, payload[:half], fin=False, rsv=RSV1)
        + control
        + frame(0, payload[half:])
        + frame(1, b"next")
    )

    async def handler(peer: RawPeer) -> None:
        await peer.accept(extension_line("permessage-deflate"))
        await peer.send(wire)
        await peer.read_close()
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url, compression=True, receive_mode=mode) as ws:
            events: list[MessageReceived] = []
            while len([event for event in events if event.is_message_complete]) < 2:
                events.append(await ws.receive())
    assert b"".join(event.data for event in events[:-1]).decode() == text
    assert events[-1] == MessageReceived(UTF8, b"next")


# -- hostile compressed traffic -----------------------------------------------------------------


def failing_compressed_server(log: ServerLog, wire: bytes, answer: str | None) -> Handler:
    async def handler(peer: RawPeer) -> None:
        try:
            await peer.accept(extension_line(answer))
            await peer.send(frame(1, b"before") + wire)
            with trio.move_on_after(PROMPT):
                try:
                    log.close_code = await peer.read_close()
                    log.got_close = True
                except EOFError:
                    log.eof = True
                    return
                log.eof = await peer.wait_eof()
        finally:
            log.done.set()

    return handler


def _compressed(data: bytes) -> bytes:
    return deflate(compressor(), data)


HOSTILE_COMPRESSED = [
    ("rsv1-on-continuation", frame(1, b"a", fin=False) + frame(0, b"b", rsv=RSV1), {1002}),
    (
        "rsv1-on-compressed-continuation",
        frame(1, _compressed(b"ab")[:1], fin=False, rsv=RSV1)
        + frame(0, _compressed(b"ab")[1:], rsv=RSV1),
        {1002},
    ),
    ("rsv1-on-ping", frame(9, b"p", rsv=RSV1), {1002}),
    ("rsv1-on-close", frame(8, close_payload(1000), rsv=RSV1), {1002}),
    ("rsv2", frame(2, _compressed(b"x"), rsv=RSV1 | 2), {1002}),
    ("rsv3", frame(2, b"x", rsv=1), {1002}),
    # RFC 7692 does not name a code for undecodable data; 1007 (bad payload) or 1002 are fine.
    ("corrupt-deflate", frame(2, b"\xff\xff\xff\xff", rsv=RSV1), {1002, 1007}),
    ("invalid-utf8-inside", frame(1, _compressed(b"ok \xff\xfe"), rsv=RSV1), {1007}),
    ("truncated-utf8-inside", frame(1, _compressed(b"ok \xe2\x82"), rsv=RSV1), {1007}),
]


@pytest.mark.parametrize("mode", [FULL, PARTIAL], ids=["full", "partial"])
@pytest.mark.parametrize(
    ("wire", "codes"),
    [pytest.param(wire, codes, id=name) for name, wire, codes in HOSTILE_COMPRESSED],
)
async def test_hostile_compressed_frames(
    raw_server: RawServer, wire: bytes, codes: set[int], mode: MessageWebSocketReceiveMode
) -> None:
    log = ServerLog()
    url = await raw_server(failing_compressed_server(log, wire, "permessage-deflate"))
    await _expect_failure(url, log, codes, mode=mode)


async def test_compressed_frame_when_compression_was_declined(raw_server: RawServer) -> None:
    """Offered, declined by the server, then RSV1 anyway: a protocol error."""
    log = ServerLog()
    wire = frame(1, _compressed(b"sneaky"), rsv=RSV1)
    url = await raw_server(failing_compressed_server(log, wire, None))
    await _expect_failure(url, log, {1002}, mode=FULL)


async def _expect_failure(
    url: str,
    log: ServerLog,
    codes: set[int],
    *,
    mode: MessageWebSocketReceiveMode,
    error_type: type[ConnectionClosed] = ConnectionClosed,
) -> None:
    received: list[MessageReceived] = []
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url, compression=True, receive_mode=mode) as ws:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    received.append(await ws.receive())
        await log.done.wait()
    assert type(info.value) is error_type
    assert info.value.code in codes
    assert info.value.status is not WebErrorStatus.UNKNOWN
    assert received[0] == MessageReceived(UTF8, b"before")
    assert all(not event.is_message_complete for event in received[1:])
    assert log.got_close and log.close_code == info.value.code
    assert log.eof is not None, "the client did not close TCP promptly"


# -- decompression bombs ------------------------------------------------------------------------


def test_bomb_generator_is_sound() -> None:
    """The helper really produces a deflate stream of exactly ``total`` zeros."""
    payload = bomb(64 * MiB, unit_size=4 * MiB)
    d = zlib.decompressobj(-15)
    total = 0
    view = memoryview(payload + TAIL)
    for start in range(0, len(view), 4096):
        chunk = d.decompress(view[start : start + 4096])
        assert not chunk.strip(b"\x00")
        total += len(chunk)
    assert total == 64 * MiB
    assert len(payload) < 64 * MiB // 500


@dataclass
class BombLog:
    close_code: int | None = None
    eof: bool | None = None
    done: trio.Event = field(default_factory=trio.Event)


def bomb_server(log: BombLog, payload: bytes, *, then_close: bool) -> Handler:
    """Negotiate deflate, send one bomb message, then (optionally) close cleanly."""

    async def handler(peer: RawPeer) -> None:
        try:
            await peer.accept(extension_line("permessage-deflate"))

            async def send() -> None:
                try:
                    await peer.send(bomb_header(len(payload)))
                    view = memoryview(payload)
                    for start in range(0, len(view), 64 * 1024):
                        await peer.send(bytes(view[start : start + 64 * 1024]))
                    if then_close:
                        await peer.send(frame(8, close_payload(1000)))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the client gave up on the bomb, as it should

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                with trio.move_on_after(120):
                    try:
                        log.close_code = await peer.read_close()
                    except (EOFError, trio.BrokenResourceError):
                        pass
                    else:
                        if then_close:
                            await peer.stream.aclose()
                        else:
                            log.eof = await peer.wait_eof()
                nursery.cancel_scope.cancel()
        finally:
            log.done.set()

    return handler


@pytest.mark.parametrize(
    ("max_message_size", "bound"),
    [(16 * MiB, 64 * MiB), (1 * MiB, 24 * MiB)],
    ids=["default-max", "1MiB-max"],
)
async def test_bomb_full_message_2gib(
    raw_server: RawServer, max_message_size: int, bound: int
) -> None:
    """2 GiB of zeros in ~2 MB: FULL_MESSAGE fails with 1009 quickly and in memory bounded
    by max_message_size (plus a fixed allowance), never by what the bomb expands to."""
    payload = bomb(2 * GiB)
    log = BombLog()
    url = await raw_server(bomb_server(log, payload, then_close=False))
    started = time.perf_counter()
    with peak_memory() as peak, trio.fail_after(30):
        async with trio_mws.open_message_websocket(
            url, compression=True, max_message_size=max_message_size
        ) as ws:
            with pytest.raises(MessageTooBig) as info:
                await ws.receive()
        await log.done.wait()
    elapsed = time.perf_counter() - started
    print(
        f"\nFULL bomb 2 GiB / max {max_message_size // MiB} MiB: {elapsed:.2f} s, "
        f"peak {peak[0] / MiB:.1f} MiB"
    )
    assert info.value.code == 1009
    assert log.close_code == 1009
    assert log.eof is not None
    assert peak[0] < bound, f"peak {peak[0] / MiB:.1f} MiB"
    assert elapsed < 10, f"took {elapsed:.1f} s"


async def test_bomb_fragmented_full_message(raw_server: RawServer) -> None:
    """The same bomb cut into many small continuation frames (each one harmless)."""
    unit = zeros_unit(MiB)
    wire = frame(2, unit, fin=False, rsv=RSV1)
    wire += b"".join(frame(0, unit, fin=False) for _ in range(30))
    wire += frame(0, unit[: -len(TAIL)])
    log = ServerLog()
    url = await raw_server(failing_compressed_server(log, wire, "permessage-deflate"))
    with peak_memory() as peak:
        await _expect_failure(url, log, {1009}, mode=FULL, error_type=MessageTooBig)
    print(f"\nfragmented FULL bomb: peak {peak[0] / MiB:.1f} MiB")
    assert peak[0] < 64 * MiB, f"peak {peak[0] / MiB:.1f} MiB"


@pytest.mark.parametrize(
    ("total", "max_message_size", "bound"),
    [(1 * GiB, 16 * MiB, 64 * MiB), (256 * MiB, 1 * MiB, 32 * MiB)],
    ids=["1GiB-default-max", "256MiB-1MiB-max"],
)
async def test_bomb_partial_message_streams_in_bounded_memory(
    raw_server: RawServer, total: int, max_message_size: int, bound: int
) -> None:
    """PARTIAL_MESSAGE: no message is too big; the bomb streams through in chunks of at most
    max_message_size, the total is exact, and memory stays bounded (``bound``: 64 MiB with
    the default 16 MiB limit; queue_size x 1 MiB + 16 MiB with a 1 MiB limit)."""
    payload = bomb(total)
    log = BombLog()
    url = await raw_server(bomb_server(log, payload, then_close=True))
    received = 0
    chunks = 0
    largest = 0
    last: MessageReceived | None = None
    started = time.perf_counter()
    with peak_memory() as peak, trio.fail_after(120):
        async with trio_mws.open_message_websocket(
            url, compression=True, receive_mode=PARTIAL, max_message_size=max_message_size
        ) as ws:
            async for event in ws:
                assert event.message_type is BINARY
                assert event.data[:1] in (b"", b"\x00") and event.data[-1:] in (b"", b"\x00")
                received += len(event.data)
                largest = max(largest, len(event.data))
                chunks += 1
                last = event
        await log.done.wait()
    elapsed = time.perf_counter() - started
    print(
        f"\nbomb {total // MiB} MiB / max {max_message_size // MiB} MiB: {elapsed:.1f} s, "
        f"{chunks} chunks, peak {peak[0] / MiB:.1f} MiB"
    )
    assert received == total
    assert largest <= max_message_size
    assert last is not None and last.is_message_complete
    assert ws.closed == trio_mws.Closed(1000, "", initiated_locally=False)
    assert peak[0] < bound, f"peak {peak[0] / MiB:.1f} MiB"
