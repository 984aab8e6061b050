"""Hostile servers: protocol violations on the wire (RFC 6455 sections 5, 7 and 8).

Every violation must *fail the WebSocket connection* (RFC 6455 section 7.1.7): the client
sends a close frame with the right code (1002 protocol error, 1007 invalid UTF-8 in a text
message or a close reason, 1009 too big), closes TCP without waiting for the server's close
frame, and ``receive()`` raises :class:`trio_mws.ConnectionClosed` with that code and a
status. Never a hang, never a foreign exception, never a lost message that arrived before the
bad frame.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

import trio_mws
from trio_mws import (
    ConnectionClosed,
    MessageReceived,
    MessageTooBig,
    MessageWebSocketReceiveMode,
    SocketMessageType,
    WebErrorStatus,
    WebSocketState,
)

from .rawserver import Handler, RawPeer, close_payload, frame

RawServer = Callable[[Handler], Awaitable[str]]

#: "Promptly": generous for a loaded 2-core machine, well below close_timeout (10 s).
PROMPT = 5.0

FULL = MessageWebSocketReceiveMode.FULL_MESSAGE
PARTIAL = MessageWebSocketReceiveMode.PARTIAL_MESSAGE
BEFORE = MessageReceived(SocketMessageType.UTF8, b"before", True)

PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
TOO_BIG = 1009


@dataclass
class ServerView:
    """What the scripted server saw of the client's reaction."""

    got_close: bool = False
    close_code: int | None = None
    eof: bool | None = None  # True: FIN, False: reset, None: still open at the deadline
    eof_after: float | None = None  # seconds from the bad frame to the client's TCP close
    done: trio.Event = field(default_factory=trio.Event)


def violating_server(
    view: ServerView, bad: bytes, *, before: bytes = b"", trickle: bool = False
) -> Handler:
    """Accept, send ``before`` + ``bad`` in one write (``trickle``: ``bad`` one byte per
    write), then watch the client's reaction and never answer its close frame."""

    async def handler(peer: RawPeer) -> None:
        try:
            await peer.accept()
            if trickle:
                await peer.send(before)
                for byte in bad:
                    await trio.sleep(0.001)
                    await peer.send(bytes([byte]))
            else:
                await peer.send(before + bad)
            sent = trio.current_time()
            with trio.move_on_after(PROMPT):
                try:
                    view.close_code = await peer.read_close()
                    view.got_close = True
                except EOFError:
                    view.eof = True
                    view.eof_after = trio.current_time() - sent
                    return
                view.eof = await peer.wait_eof()
                view.eof_after = trio.current_time() - sent
        finally:
            view.done.set()

    return handler


@dataclass
class ClientView:
    """What the application saw."""

    received: list[MessageReceived] = field(default_factory=list)
    error: ConnectionClosed | None = None
    again: ConnectionClosed | None = None
    send_error: ConnectionClosed | None = None
    state: WebSocketState | None = None
    closed: trio_mws.Closed | None = None
    hung: bool = False


async def run_client(url: str, **control_fields: Any) -> ClientView:
    """Receive until ``receive()`` raises; then check that the socket stays failed."""
    view = ClientView()
    with trio.move_on_after(PROMPT) as scope:
        async with trio_mws.open_message_websocket(url, **control_fields) as ws:
            try:
                while True:
                    view.received.append(await ws.receive())
            except ConnectionClosed as exc:
                view.error = exc
            try:
                await ws.receive()
            except ConnectionClosed as exc:
                view.again = exc
            try:
                await ws.send("after the failure")
            except ConnectionClosed as exc:
                view.send_error = exc
            view.state = ws.state
            view.closed = ws.closed
    view.hung = scope.cancelled_caught
    return view


def assert_failed(
    client: ClientView,
    server: ServerView,
    code: int,
    *,
    before: list[MessageReceived],
    error_type: type[ConnectionClosed] = ConnectionClosed,
) -> None:
    """The common verdict: right close code both ways, prompt TCP close, nothing lost."""
    assert not client.hung, f"the client hung for {PROMPT} s (received {client.received})"
    error = client.error
    assert error is not None, "receive() never raised"
    assert type(error) is error_type, repr(error)
    assert error.code == code, (error.code, str(error))
    assert isinstance(error.status, WebErrorStatus)
    assert error.status is not WebErrorStatus.UNKNOWN
    assert trio_mws.WebSocketError.get_status(error) is error.status
    # Complete messages that arrived before the violation are all delivered, in order.
    assert client.received[: len(before)] == before
    assert all(not event.is_message_complete for event in client.received[len(before) :])
    # The failure sticks.
    assert client.again is not None and client.again.code == code
    assert client.send_error is not None
    assert client.state is WebSocketState.CLOSED
    # The server got the close frame with the code, then a prompt TCP close.
    assert server.got_close, "the client sent no close frame"
    assert server.close_code == code
    assert server.eof is not None, "the client did not close TCP promptly"
    assert server.eof_after is not None and server.eof_after < PROMPT


def raw_length_frame(first: int, length_bytes: bytes, payload: bytes) -> bytes:
    """A frame with a hand-made length field (``length_bytes`` includes the 7-bit length)."""
    return bytes([first]) + length_bytes + payload


VIOLATIONS: list[tuple[str, bytes, int]] = [
    # Reserved bits without a negotiated extension (5.2).
    ("rsv1", frame(1, b"x", rsv=4), PROTOCOL_ERROR),
    ("rsv2", frame(1, b"x", rsv=2), PROTOCOL_ERROR),
    ("rsv3", frame(2, b"x", rsv=1), PROTOCOL_ERROR),
    ("rsv-all", frame(2, b"x", rsv=7), PROTOCOL_ERROR),
    ("rsv1-on-ping", frame(9, b"p", rsv=4), PROTOCOL_ERROR),
    # A server must not mask (5.1).
    ("masked-text", frame(1, b"hello", mask=b"\x01\x02\x03\x04"), PROTOCOL_ERROR),
    ("masked-close", frame(8, close_payload(1000), mask=b"\x01\x02\x03\x04"), PROTOCOL_ERROR),
    # Reserved opcodes (5.2).
    ("opcode-3", frame(3, b"x"), PROTOCOL_ERROR),
    ("opcode-7", frame(7), PROTOCOL_ERROR),
    ("opcode-0xB", frame(0xB, b"x"), PROTOCOL_ERROR),
    ("opcode-0xF", frame(0xF), PROTOCOL_ERROR),
    # Control frames must not be fragmented nor longer than 125 bytes (5.5).
    ("ping-fin0", frame(9, b"p", fin=False), PROTOCOL_ERROR),
    ("pong-fin0", frame(10, b"p", fin=False), PROTOCOL_ERROR),
    ("close-fin0", frame(8, close_payload(1000), fin=False), PROTOCOL_ERROR),
    ("ping-126", frame(9, b"p" * 126), PROTOCOL_ERROR),
    ("pong-126", frame(10, b"p" * 126), PROTOCOL_ERROR),
    ("close-126", frame(8, close_payload(1000, b"r" * 124)), PROTOCOL_ERROR),
    ("ping-64k", frame(9, b"p" * 65536), PROTOCOL_ERROR),
    # Fragmentation rules (5.4).
    ("continuation-without-start", frame(0, b"x"), PROTOCOL_ERROR),
    ("continuation-fin0-without-start", frame(0, b"x", fin=False), PROTOCOL_ERROR),
    ("text-inside-fragmented", frame(1, b"a", fin=False) + frame(1, b"b"), PROTOCOL_ERROR),
    ("binary-inside-fragmented", frame(2, b"a", fin=False) + frame(2, b"b"), PROTOCOL_ERROR),
    ("text-inside-fragmented-binary", frame(2, b"a", fin=False) + frame(1, b"b"), PROTOCOL_ERROR),
    # Invalid UTF-8 in a text message (8.1): 1007.
    ("utf8-invalid-byte", frame(1, b"ok\xff"), INVALID_DATA),
    ("utf8-surrogate", frame(1, b"\xed\xa0\x80"), INVALID_DATA),
    ("utf8-overlong", frame(1, b"\xc0\xaf"), INVALID_DATA),
    ("utf8-above-max", frame(1, b"\xf4\x90\x80\x80"), INVALID_DATA),
    ("utf8-truncated-at-end", frame(1, b"ok\xe2\x82"), INVALID_DATA),
    (
        "utf8-invalid-split",
        frame(1, b"ok\xf4", fin=False) + frame(0, b"\x90\x80\x80"),
        INVALID_DATA,
    ),
    ("utf8-truncated-fragmented", frame(1, b"ok\xe2", fin=False) + frame(0, b"\x82"), INVALID_DATA),
    # Close frames (5.5.1, 7.4): invalid codes and payloads.
    *[
        (f"close-code-{code}", frame(8, close_payload(code)), PROTOCOL_ERROR)
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)
    ],
    ("close-1-byte", frame(8, b"\x03"), PROTOCOL_ERROR),
    ("close-reason-invalid-utf8", frame(8, close_payload(1000, b"bye\xff\xfe")), INVALID_DATA),
    ("close-reason-truncated-utf8", frame(8, close_payload(1000, b"\xe2\x82")), INVALID_DATA),
    # Length fields (5.2): the most significant bit must be 0, and the minimal form is a MUST.
    ("length-msb-2^63", frame(2, length=2**63), PROTOCOL_ERROR),
    ("length-2^64-1", frame(2, length=2**64 - 1), PROTOCOL_ERROR),
    ("length-2-bytes-for-10", raw_length_frame(0x82, b"\x7e\x00\x0a", b"x" * 10), PROTOCOL_ERROR),
    (
        "length-8-bytes-for-200",
        raw_length_frame(0x82, b"\x7f" + struct.pack("!Q", 200), b"x" * 200),
        PROTOCOL_ERROR,
    ),
]


@pytest.mark.parametrize("mode", [FULL, PARTIAL], ids=["full", "partial"])
@pytest.mark.parametrize(
    ("bad", "code"), [pytest.param(bad, code, id=name) for name, bad, code in VIOLATIONS]
)
async def test_violation_fails_the_connection(
    raw_server: RawServer, bad: bytes, code: int, mode: MessageWebSocketReceiveMode
) -> None:
    server = ServerView()
    url = await raw_server(violating_server(server, bad, before=frame(1, b"before")))
    client = await run_client(url, receive_mode=mode)
    with trio.fail_after(PROMPT):
        await server.done.wait()
    assert_failed(client, server, code, before=[BEFORE])
    assert client.closed is None  # no close handshake completed: no Closed event


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        pytest.param(frame(1, b"x", rsv=4), PROTOCOL_ERROR, id="rsv1"),
        pytest.param(frame(1, b"\xff"), INVALID_DATA, id="utf8"),
        pytest.param(frame(8, close_payload(1005)), PROTOCOL_ERROR, id="close-1005"),
    ],
)
async def test_violation_leaves_async_with_as_one_connection_closed(
    raw_server: RawServer, bad: bytes, code: int
) -> None:
    """The error raised in the body leaves ``async with`` unchanged, not in a group."""
    server = ServerView()
    url = await raw_server(violating_server(server, bad))
    with trio.fail_after(PROMPT), pytest.raises(ConnectionClosed) as info:
        async with trio_mws.open_message_websocket(url) as ws:
            async for _event in ws:
                pass
    assert type(info.value) is ConnectionClosed
    assert info.value.code == code
    with trio.fail_after(PROMPT):
        await server.done.wait()
    assert server.close_code == code


async def test_violation_ends_events_iterator_with_error(raw_server: RawServer) -> None:
    """``events()`` raises on a failed connection: no ``Closed`` event without a handshake."""
    server = ServerView()
    url = await raw_server(violating_server(server, frame(3), before=frame(2, b"\x00")))
    seen: list[object] = []
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url) as ws:
            with pytest.raises(ConnectionClosed) as info:
                async for event in ws.events():
                    seen.append(event)
    assert seen == [MessageReceived(SocketMessageType.BINARY, b"\x00", True)]
    assert info.value.code == PROTOCOL_ERROR


async def test_many_messages_before_violation_are_all_delivered(raw_server: RawServer) -> None:
    """More messages than the queue holds arrive in the same read as the bad frame."""
    server = ServerView()
    before = b"".join(frame(2, i.to_bytes(2, "big")) for i in range(100))
    url = await raw_server(violating_server(server, frame(0xB), before=before))
    client = await run_client(url)
    with trio.fail_after(PROMPT):
        await server.done.wait()
    expected = [MessageReceived(SocketMessageType.BINARY, i.to_bytes(2, "big")) for i in range(100)]
    assert_failed(client, server, PROTOCOL_ERROR, before=expected)


async def test_violation_in_the_same_segment_as_the_101(raw_server: RawServer) -> None:
    """Frames read together with the handshake response go through the same checks."""
    server = ServerView()
    url = await raw_server(_early_violation(server, frame(1, b"before") + frame(1, b"\xc0")))
    client = await run_client(url)
    with trio.fail_after(PROMPT):
        await server.done.wait()
    assert_failed(client, server, INVALID_DATA, before=[BEFORE])


def _early_violation(view: ServerView, wire: bytes) -> Handler:
    async def handler(peer: RawPeer) -> None:
        try:
            await peer.accept(after=wire)
            sent = trio.current_time()
            with trio.move_on_after(PROMPT):
                view.close_code = await peer.read_close()
                view.got_close = True
                view.eof = await peer.wait_eof()
                view.eof_after = trio.current_time() - sent
        finally:
            view.done.set()

    return handler


async def test_violation_split_byte_by_byte(raw_server: RawServer) -> None:
    """A bad header that arrives one byte per segment is still detected."""
    server = ServerView()
    bad = frame(2, length=2**63)
    url = await raw_server(violating_server(server, bad, before=frame(1, b"before"), trickle=True))
    client = await run_client(url)
    with trio.fail_after(PROMPT):
        await server.done.wait()
    assert_failed(client, server, PROTOCOL_ERROR, before=[BEFORE])


# -- oversized messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length", [2**62, 2**63 - 1, 16 * 1024 * 1024 + 1], ids=["2^62", "2^63-1", "16MiB+1"]
)
async def test_announced_length_over_limit_fails_before_the_payload(
    raw_server: RawServer, length: int
) -> None:
    """FULL_MESSAGE: a header announcing more than max_message_size is refused at once."""
    server = ServerView()
    url = await raw_server(
        violating_server(server, frame(2, length=length), before=frame(1, b"before"))
    )
    client = await run_client(url)
    with trio.fail_after(PROMPT):
        await server.done.wait()
    assert_failed(client, server, TOO_BIG, before=[BEFORE], error_type=MessageTooBig)


async def test_announced_length_with_some_payload(raw_server: RawServer) -> None:
    """Same with part of the payload sent: the client must not wait for the rest."""
    server = ServerView()
    url = await raw_server(violating_server(server, frame(2, length=2**62)[:10] + bytes(100_000)))
    client = await run_client(url)
    with trio.fail_after(PROMPT):
        await server.done.wait()
    assert_failed(client, server, TOO_BIG, before=[], error_type=MessageTooBig)


@pytest.mark.parametrize(
    ("frames", "ok"),
    [
        pytest.param([frame(2, bytes(1000))], True, id="one-frame-at-limit"),
        pytest.param([frame(2, bytes(1001))], False, id="one-frame-over-limit"),
        pytest.param(
            [frame(2, bytes(500), fin=False), frame(0, bytes(500))], True, id="fragments-at-limit"
        ),
        pytest.param(
            [frame(2, bytes(500), fin=False), frame(0, bytes(500), fin=False), frame(0, b"x")],
            False,
            id="fragments-over-limit",
        ),
        pytest.param([frame(1, "é".encode() * 500)], True, id="text-at-limit"),
        pytest.param([frame(1, "é".encode() * 500 + b"x")], False, id="text-over-limit"),
    ],
)
async def test_max_message_size_boundary(
    raw_server: RawServer, frames: list[bytes], ok: bool
) -> None:
    server = ServerView()
    url = await raw_server(violating_server(server, b"".join(frames) + frame(3)))
    client = await run_client(url, max_message_size=1000)
    with trio.fail_after(PROMPT):
        await server.done.wait()
    if ok:  # the message is delivered; the reserved opcode after it then fails the connection
        assert len(client.received) == 1 and len(client.received[0].data) == 1000
        assert_failed(client, server, PROTOCOL_ERROR, before=client.received[:1])
    else:
        assert_failed(client, server, TOO_BIG, before=[], error_type=MessageTooBig)


# -- close frames that are valid ----------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        1000,
        1001,
        1002,
        1003,
        1007,
        1008,
        1009,
        1010,
        1011,
        1012,
        1013,
        1014,
        3000,
        3999,
        4000,
        4999,
    ],
)
async def test_valid_close_codes_complete_the_handshake(raw_server: RawServer, code: int) -> None:
    """Registered codes (RFC 6455 7.4.1 and the IANA registry: 1012-1014) and 3000-4999 are
    accepted; the client echoes the code and ``events()`` ends with ``Closed``."""
    echoed: list[int | None] = []

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(1, b"before") + frame(8, close_payload(code, "é!".encode())))
        echoed.append(await peer.read_close())
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url) as ws:
            events = [event async for event in ws.events()]
    assert events == [BEFORE, trio_mws.Closed(code, "é!", initiated_locally=False)]
    assert echoed == [code]


async def test_close_reason_of_123_bytes_and_empty_close(raw_server: RawServer) -> None:
    """The largest legal close payload (125 bytes) and an empty one (reported as 1005)."""
    reason = "r" * 121 + "é"  # 123 bytes
    results: list[trio_mws.Closed | None] = []
    for payload in (close_payload(4000, reason.encode()), b""):

        async def handler(peer: RawPeer, payload: bytes = payload) -> None:
            await peer.accept()
            await peer.send(frame(8, payload))
            await peer.read_close()
            await peer.stream.aclose()

        url = await raw_server(handler)
        with trio.fail_after(PROMPT):
            async with trio_mws.open_message_websocket(url) as ws:
                async for _event in ws:
                    pass
        results.append(ws.closed)
    assert results == [
        trio_mws.Closed(4000, reason, initiated_locally=False),
        trio_mws.Closed(1005, "", initiated_locally=False),
    ]


# -- odd but legal servers ----------------------------------------------------------------------


async def test_frames_in_the_same_segment_as_the_101(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept(after=frame(1, b"early") + frame(2, b"bird", fin=False) + frame(0, b"!"))
        assert await peer.read_close() == 1000
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url) as ws:
            first = await ws.receive()
            second = await ws.receive()
    assert first == MessageReceived(SocketMessageType.UTF8, b"early")
    assert second == MessageReceived(SocketMessageType.BINARY, b"bird!")


async def test_message_trickled_byte_by_byte(raw_server: RawServer) -> None:
    data = "ünïcödé ".encode() * 40  # needs a 2-byte length, and splits characters
    wire = frame(1, data[:100], fin=False) + frame(9, b"ping") + frame(0, data[100:])

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        for byte in wire:
            await peer.send(bytes([byte]))
            await trio.lowlevel.checkpoint()
        _fin, opcode, payload = await peer.read_frame()
        assert (opcode, payload) == (10, b"ping")
        assert await peer.read_close() == 1000
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url) as ws:
            event = await ws.receive()
    assert event.text == data.decode()


async def test_ping_inside_fragmented_message_and_unsolicited_pong(raw_server: RawServer) -> None:
    pongs: list[bytes] = []

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(
            frame(1, b"he", fin=False)
            + frame(9, b"p" * 125)
            + frame(10, b"unsolicited")
            + frame(0, b"ll", fin=False)
            + frame(0, b"o")
        )
        _fin, opcode, payload = await peer.read_frame()
        assert opcode == 10
        pongs.append(payload)
        assert await peer.read_close() == 1000
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url) as ws:
            event = await ws.receive()
    assert event.text == "hello"
    assert pongs == [b"p" * 125]


async def test_bytes_after_the_server_close_frame_are_ignored(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(8, close_payload(1000)) + frame(3) + b"\xff" * 1000)
        await peer.read_close()
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPT):
        async with trio_mws.open_message_websocket(url) as ws:
            events = [event async for event in ws.events()]
    assert events == [trio_mws.Closed(1000, "", initiated_locally=False)]


# -- the server vanishes ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["eof", "reset"])
async def test_server_vanishes_in_the_middle_of_a_frame(raw_server: RawServer, how: str) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(1, b"before") + frame(2, bytes(1000))[:500])
        await trio.sleep(0.05)
        if how == "reset":
            peer.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await peer.stream.aclose()

    url = await raw_server(handler)
    client = await run_client(url)
    error = client.error
    assert error is not None and type(error) is ConnectionClosed
    assert error.code == 1006
    expected = WebErrorStatus.DISCONNECTED if how == "eof" else WebErrorStatus.CONNECTION_RESET
    assert error.status is expected
    assert client.received == [BEFORE]
    assert client.closed is None
    assert client.state is WebSocketState.CLOSED


# -- floods -------------------------------------------------------------------------------------


def _rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
async def test_ping_flood_from_a_server_that_never_reads(raw_server: RawServer) -> None:
    """Pongs owed to a peer that does not read must not pile up in memory: the reader has to
    stop reading (back-pressure) instead of queuing pong after pong.

    Measured with the RSS rather than tracemalloc, which would slow the client down so much
    that too few pings get through to tell a bounded queue from an unbounded one. A client
    that queues every pong grows by roughly what the server managed to send (tens of MiB in
    the window); one that applies back-pressure lets the kernel's socket buffers fill and
    stalls the server.
    """
    ping = frame(9, b"p" * 125)
    batch = ping * (1024 * 1024 // len(ping))  # ~1 MiB of pings
    growth: list[int] = []
    sent: list[int] = []

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        count = 0
        with trio.move_on_after(5):  # a client that applies back-pressure blocks this
            while True:
                await peer.send(batch)
                count += 1
        sent.append(count)
        growth.append(_rss() - baseline)  # the client is still connected, holding its queue
        peer.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await peer.stream.aclose()

    url = await raw_server(handler)
    baseline = _rss()
    with trio.fail_after(30), pytest.raises(ConnectionClosed):
        async with trio_mws.open_message_websocket(url, ping_interval=None) as ws:
            await ws.receive()
    assert growth, "the server never finished"
    assert growth[0] < 16 * 1024 * 1024, (
        f"RSS grew by {growth[0] / 2**20:.1f} MiB while the server sent {sent[0]} MiB of pings"
    )
