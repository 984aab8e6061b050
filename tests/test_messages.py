"""Receiving messages: round trips, reassembly, size limits, back-pressure, the end of the
stream and cancellation.

Peers: the trio-websocket echo server, the ``websockets`` echo server, and scripted raw
servers for wire-level control of what the client receives.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
import trio

import trio_mws
from trio_mws import (
    Closed,
    ConnectionClosed,
    MessageReceived,
    MessageTooBig,
    SocketMessageType,
    WebSocketState,
)

from .mws_helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PROMPTLY,
    ServerLog,
    StartServer,
    answer_close,
    close_frame,
    read_frame,
    read_until_close,
    wait_eof,
)
from .rawserver import Handler, RawPeer, frame

UTF8 = SocketMessageType.UTF8
BINARY = SocketMessageType.BINARY
MiB = 1024 * 1024


@pytest.fixture(params=["trio-websocket", "websockets"])
async def any_echo_url(request: pytest.FixtureRequest, echo_url: str, websockets_url: str) -> str:
    """Each echo server in turn: two independent implementations of the server side."""
    return echo_url if request.param == "trio-websocket" else websockets_url


async def wait_until_received(ws: trio_mws.MessageWebSocket, count: int) -> None:
    """Wait until the socket has taken ``count`` whole messages off the wire (polling)."""
    with trio.fail_after(PROMPTLY):
        # No event tells that a message was buffered: poll (bounded by PROMPTLY).
        while ws.information.messages_received < count:  # noqa: ASYNC110
            await trio.sleep(0.001)


# -- round trips -----------------------------------------------------------------------------

NON_ASCII = "héllo wörld — ✓ 日本語 🎉 \u0000 \U0010ffff"

ROUND_TRIPS = [
    pytest.param("hello", id="text"),
    pytest.param(b"\x00\x01\x80\xfe\xff", id="binary"),
    pytest.param("", id="empty-text"),
    pytest.param(b"", id="empty-binary"),
    pytest.param(NON_ASCII, id="non-ascii-text"),
    pytest.param(bytes(range(256)) * (4 * 1024), id="1MiB-binary"),
    pytest.param(("aé€𝄞" * (MiB // 10 + 1))[: MiB // 10 * 4], id="1MiB-text"),
]


@pytest.mark.parametrize("data", ROUND_TRIPS)
async def test_round_trip(any_echo_url: str, data: str | bytes) -> None:
    async with trio_mws.open_message_websocket(any_echo_url) as ws:
        await ws.send(data)
        event = await ws.receive()
    if isinstance(data, str):
        assert event == MessageReceived(UTF8, data.encode("utf-8"), True)
        assert event.text == data
    else:
        assert event == MessageReceived(BINARY, data, True)


async def test_pipelined_round_trips_keep_order(any_echo_url: str) -> None:
    """Many messages sent without waiting come back in order, each one whole."""
    messages: list[str | bytes] = [
        f"text {i} ✓" if i % 2 else f"binary {i}".encode() * i for i in range(200)
    ]
    async with trio_mws.open_message_websocket(any_echo_url) as ws:
        for message in messages:
            await ws.send(message)
        events = [await ws.receive() for _ in messages]
        assert ws.information.messages_sent == len(messages)
        assert ws.information.messages_received == len(messages)
    for message, event in zip(messages, events, strict=True):
        if isinstance(message, str):
            assert (event.message_type, event.text) == (UTF8, message)
        else:
            assert (event.message_type, event.data) == (BINARY, message)


async def test_bytes_like_objects_are_sent_as_binary(any_echo_url: str) -> None:
    async with trio_mws.open_message_websocket(any_echo_url) as ws:
        # Typed Any: the API accepts bytes-like data though send() is annotated str | bytes.
        array: Any = bytearray(b"from a bytearray")
        view: Any = memoryview(b"from a memoryview")
        await ws.send(array)
        await ws.send(view)
        assert await ws.receive() == MessageReceived(BINARY, b"from a bytearray")
        assert await ws.receive() == MessageReceived(BINARY, b"from a memoryview")


async def test_control_message_type_utf8_sends_bytes_as_text(any_echo_url: str) -> None:
    async with trio_mws.open_message_websocket(any_echo_url) as ws:
        ws.control.message_type = UTF8
        await ws.send("ünïcode bytes".encode())
        assert await ws.receive() == MessageReceived(UTF8, "ünïcode bytes".encode())
        # An explicit message_type wins over control.message_type ...
        await ws.send(b"\xff binary anyway", message_type=BINARY)
        assert await ws.receive() == MessageReceived(BINARY, b"\xff binary anyway")
        # ... and changing control.message_type applies to later messages.
        ws.control.message_type = BINARY
        await ws.send(b"binary again")
        assert await ws.receive() == MessageReceived(BINARY, b"binary again")
        await ws.send(b"text again", message_type=UTF8)
        assert (await ws.receive()).message_type is UTF8


# -- the end of the stream -------------------------------------------------------------------


def closing_server(log: ServerLog, code: int | None, reason: bytes, messages: bytes) -> Handler:
    """A handler: send ``messages`` and a close frame in one write, wait for the client's close
    frame, then close TCP first (as RFC 6455 asks of servers)."""

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(messages + close_frame(code, reason))
        log.values["reply"] = await read_until_close(peer, log)
        await peer.stream.aclose()
        log.done.set()

    return handler


@pytest.mark.parametrize("code", [1000, 1001, 1011, 4000, None])
async def test_async_for_ends_normally_after_a_server_close(
    raw_server: StartServer, code: int | None
) -> None:
    log = ServerLog()
    reason = b"going away" if code is not None else b""
    messages = frame(OP_TEXT, b"one") + frame(OP_BINARY, b"two")
    url = await raw_server(closing_server(log, code, reason, messages))
    async with trio_mws.open_message_websocket(url) as ws:
        received = [event async for event in ws]
        assert received == [MessageReceived(UTF8, b"one"), MessageReceived(BINARY, b"two")]
        expected_code = 1005 if code is None else code
        assert ws.closed == Closed(expected_code, reason.decode(), initiated_locally=False)
        assert ws.state is WebSocketState.CLOSED
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive()
        assert info.value.code == expected_code
        with pytest.raises(ConnectionClosed):
            await ws.send("too late")
    await log.wait()
    # The client answered the server's close frame.
    assert [f.opcode for f in log.frames] == [OP_CLOSE]


async def test_events_yields_messages_then_exactly_one_closed(raw_server: StartServer) -> None:
    log = ServerLog()
    messages = frame(OP_TEXT, "é".encode()) + frame(OP_BINARY, b"\x00")
    url = await raw_server(closing_server(log, 4001, b"done", messages))
    async with trio_mws.open_message_websocket(url) as ws:
        events = [event async for event in ws.events()]
    assert events == [
        MessageReceived(UTF8, "é".encode()),
        MessageReceived(BINARY, b"\x00"),
        Closed(4001, "done", initiated_locally=False),
    ]


async def test_a_server_that_drops_tcp_right_after_its_close_frame_still_closes_cleanly(
    raw_server: StartServer,
) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, b"a") + close_frame(1001, b"bye"))
        await peer.stream.aclose()  # without waiting for the client's close frame

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        events = [event async for event in ws.events()]
    assert events == [MessageReceived(UTF8, b"a"), Closed(1001, "bye", initiated_locally=False)]
    assert ws.closed == Closed(1001, "bye", initiated_locally=False)


@pytest.mark.parametrize("queue_size", [1, 16])
@pytest.mark.parametrize("api", ["receive", "events"])
async def test_messages_sent_just_before_the_close_frame_are_all_delivered(
    raw_server: StartServer, queue_size: int, api: str
) -> None:
    """Five messages and the close frame arrive in one TCP write; the application reads only
    afterwards. All five come out, in order, before the end of the stream."""
    log = ServerLog()
    payloads = [f"message {i}".encode() for i in range(5)]
    messages = b"".join(frame(OP_TEXT, payload) for payload in payloads)
    url = await raw_server(closing_server(log, 1000, b"", messages))
    async with trio_mws.open_message_websocket(url, message_queue_size=queue_size) as ws:
        await trio.testing.wait_all_tasks_blocked()
        if api == "receive":
            received = [(await ws.receive()).data for _ in payloads]
            with pytest.raises(ConnectionClosed) as info:
                await ws.receive()
            assert info.value.code == 1000
        else:
            events = [event async for event in ws.events()]
            assert events[-1] == Closed(1000, "", initiated_locally=False)
            received = [event.data for event in events[:-1] if isinstance(event, MessageReceived)]
            assert len(received) == len(events) - 1
    assert received == payloads


# -- reassembly of the server's fragmentation ------------------------------------------------


async def test_fragmented_text_is_reassembled_even_inside_a_character(
    raw_server: StartServer,
) -> None:
    text = "start €uro 𝄞 end"
    data = text.encode()
    euro, clef = data.index("€".encode()), data.index("𝄞".encode())
    parts = [data[: euro + 1], data[euro + 1 : clef + 2], data[clef + 2 :]]  # split characters
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, parts[0], fin=False))
        await peer.send(frame(OP_CONTINUATION, parts[1], fin=False))
        await peer.send(frame(OP_CONTINUATION, parts[2]) + frame(OP_TEXT, b"next"))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        event = await ws.receive()
        assert event == MessageReceived(UTF8, data, True)
        assert event.text == text
        assert await ws.receive() == MessageReceived(UTF8, b"next", True)
    await log.wait()


async def test_fragmented_binary_with_an_interleaved_ping_is_reassembled_and_ping_answered(
    raw_server: StartServer,
) -> None:
    parts = [b"\x00" * 1000, bytes(range(256)), b"\xff" * 70_000]
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(
            frame(OP_BINARY, parts[0], fin=False)
            + frame(OP_PING, b"are you there?")
            + frame(OP_CONTINUATION, parts[1], fin=False)
        )
        pong = await read_frame(peer)  # answered while the message is still incomplete
        log.frames.append(pong)
        await peer.send(frame(OP_CONTINUATION, parts[2]))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        assert await ws.receive() == MessageReceived(BINARY, b"".join(parts), True)
    await log.wait()
    pong = log.frames[0]
    assert (pong.fin, pong.opcode, pong.payload) == (True, OP_PONG, b"are you there?")


# -- max_message_size ------------------------------------------------------------------------


@pytest.mark.parametrize("fragmented", [False, True], ids=["one-frame", "fragmented"])
async def test_a_message_one_byte_over_the_limit_fails_with_1009(
    raw_server: StartServer, fragmented: bool
) -> None:
    limit = 1000
    big = b"y" * (limit + 1)
    too_big = (
        frame(OP_BINARY, big[:600], fin=False) + frame(OP_CONTINUATION, big[600:])
        if fragmented
        else frame(OP_BINARY, big)
    )
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, b"before") + frame(OP_BINARY, b"x" * limit) + too_big)
        log.values["close"] = await read_until_close(peer, log)
        await wait_eof(peer, log)  # no close reply: the client must close TCP by itself
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, max_message_size=limit) as ws:
        await trio.testing.wait_all_tasks_blocked()
        assert await ws.receive() == MessageReceived(UTF8, b"before")
        assert await ws.receive() == MessageReceived(BINARY, b"x" * limit)  # exactly at the limit
        with pytest.raises(MessageTooBig) as info:
            await ws.receive()
        assert info.value.code == 1009
        assert isinstance(info.value, ConnectionClosed)
        with pytest.raises(ConnectionClosed):
            await ws.send("too late")
    await log.wait()
    assert struct.unpack("!H", log.values["close"][:2]) == (1009,)
    assert log.eof is not None


@pytest.mark.parametrize(
    ("limit", "size", "too_big"),
    [
        pytest.param(None, 17 * MiB, False, id="unlimited"),
        pytest.param(16 * MiB, 16 * MiB, False, id="default-at-limit"),
        pytest.param(16 * MiB, 16 * MiB + 1, True, id="default-over-limit"),
    ],
)
async def test_large_messages_and_the_default_limit(
    raw_server: StartServer, limit: int | None, size: int, too_big: bool
) -> None:
    payload = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        try:
            await peer.send(frame(OP_BINARY, payload))
            log.values["close"] = await read_until_close(peer, log)
            await peer.send(frame(OP_CLOSE, log.values["close"]))
        except (trio.BrokenResourceError, EOFError):
            # Too big: the client may give up before the server has written everything.
            log.values["close"] = None
        finally:
            log.done.set()

    url = await raw_server(handler)
    fields: dict[str, Any] = {} if limit == 16 * MiB else {"max_message_size": limit}
    async with trio_mws.open_message_websocket(url, **fields) as ws:
        assert ws.control.max_message_size == limit
        if too_big:
            with pytest.raises(MessageTooBig):
                await ws.receive()
        else:
            event = await ws.receive()
            assert event.data == payload
    await log.wait()
    if too_big:
        assert log.values["close"] is None or log.values["close"][:2] == b"\x03\xf1"  # 1009
    else:
        assert log.values["close"][:2] == b"\x03\xe8"  # 1000


# -- back-pressure ---------------------------------------------------------------------------


async def test_back_pressure_stops_reading_and_loses_nothing(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """With message_queue_size=2 and an application that does not read, the client stops
    reading: a server with 25 MiB to send is stuck for a (virtual) minute. Once the
    application reads, every message arrives, in order."""
    count, size = 400, 64 * 1024
    log = ServerLog()
    log.values["sent"] = 0

    def message(i: int) -> bytes:
        return struct.pack("!I", i) + bytes([i % 256]) * (size - 4)

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        for i in range(count):
            await peer.send(frame(OP_BINARY, message(i)))
            log.values["sent"] = i + 1
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, message_queue_size=2, ping_interval=None) as ws:
        await trio.sleep(60)  # the application is busy elsewhere for a minute
        stuck_at = log.values["sent"]
        assert 3 <= stuck_at < count // 2, f"the server could write {stuck_at} messages"
        for i in range(count):
            event = await ws.receive()
            assert len(event.data) == size
            assert event.data == message(i), f"message {i} lost or damaged"
    await log.wait()


# -- cancellation ----------------------------------------------------------------------------


async def test_cancelled_receives_lose_nothing(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """Receives with a short timeout keep timing out while the server sends a message every
    second: every message is still received exactly once, in order."""
    count = 10
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        for i in range(count):
            await trio.sleep(1)
            await peer.send(frame(OP_TEXT, f"tick {i}".encode()))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    received: list[str] = []
    timeouts = 0
    async with trio_mws.open_message_websocket(url, ping_interval=None) as ws:
        with trio.fail_after(60):
            while len(received) < count:
                with trio.move_on_after(0.3):
                    received.append((await ws.receive()).text)
                    continue
                timeouts += 1
    assert received == [f"tick {i}" for i in range(count)]
    assert timeouts >= count
    await log.wait()


async def test_receive_in_a_cancelled_scope_does_not_consume_a_buffered_message(
    raw_server: StartServer,
) -> None:
    """A receive() that is cancelled while a message is already buffered must leave that
    message for the next receive()."""
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, b"first") + frame(OP_TEXT, b"second"))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        await wait_until_received(ws, 2)
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.receive()
        assert scope.cancelled_caught
        assert (await ws.receive()).text == "first"
        assert (await ws.receive()).text == "second"
    await log.wait()


async def test_receive_cancelled_from_another_task_then_a_later_message_arrives(
    raw_server: StartServer,
) -> None:
    log = ServerLog()
    go = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await go.wait()
        await peer.send(frame(OP_TEXT, b"late"))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        scope = trio.CancelScope()

        async def receiver() -> None:
            with scope:
                await ws.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
        assert scope.cancelled_caught
        go.set()
        assert await ws.receive() == MessageReceived(UTF8, b"late")
    await log.wait()
