"""Closing: arguments, the close handshake on the wire, timeouts, ``async with`` exits,
cancellation, lost connections, protocol errors and ``run_message_websocket``."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import trio_mws
from trio_mws import (
    Closed,
    ConnectionClosed,
    MessageReceived,
    SocketMessageType,
    WebErrorStatus,
    WebSocketState,
)

from .mws_helpers import (
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    PROMPTLY,
    ServerLog,
    StartServer,
    close_frame,
    read_until_close,
    recording_server,
    reset_connection,
    state_of,
    wait_eof,
)
from .rawserver import Handler, RawPeer, close_payload, frame

UTF8 = SocketMessageType.UTF8


def unresponsive_server(log: ServerLog) -> Handler:
    """Read the client's close frame but never answer it, nor close TCP: wait for the client
    to give up (``log.eof``)."""

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        log.values["close"] = await read_until_close(peer, log)
        await wait_eof(peer, log)
        log.done.set()

    return handler


# -- arguments -------------------------------------------------------------------------------

INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]


async def test_invalid_close_arguments_raise_value_error_before_sending(
    raw_server: StartServer,
) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    long_reason = "é" * 62  # 124 UTF-8 bytes
    async with trio_mws.open_message_websocket(url) as ws:
        for code in INVALID_CODES:
            with pytest.raises(ValueError):
                await ws.close(code)
        with pytest.raises(ValueError):
            await ws.close(1000, long_reason)
        with pytest.raises(ValueError):
            await ws.close(4000, "x" * 124)
        assert state_of(ws) is WebSocketState.OPEN
        await ws.send("still open")
        longest = "x" * 121 + "é"  # exactly 123 UTF-8 bytes
        await ws.close(3000, longest)
        assert ws.closed == Closed(3000, longest, initiated_locally=True)
    await log.wait()
    assert [(f.opcode, f.payload) for f in log.frames] == [
        (OP_TEXT, b"still open"),
        (OP_CLOSE, close_payload(3000, longest.encode())),
    ]


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1010, 1014, 3000, 4999])
async def test_valid_close_codes_are_sent(raw_server: StartServer, code: int) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        await ws.close(code, "reason ✓")
        assert ws.closed == Closed(code, "reason ✓", initiated_locally=True)
    await log.wait()
    assert [(f.opcode, f.payload) for f in log.frames] == [
        (OP_CLOSE, close_payload(code, "reason ✓".encode()))
    ]


# -- the handshake on the wire ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "aclose", "output_stream.aclose"])
async def test_close_without_a_code_sends_an_empty_close_frame(
    raw_server: StartServer, how: str
) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))  # echoes the empty close frame
    async with trio_mws.open_message_websocket(url) as ws:
        if how == "close":
            await ws.close()
        elif how == "aclose":
            await ws.aclose()
        else:
            await ws.output_stream.aclose()
        assert ws.closed == Closed(1005, "", initiated_locally=True)
        assert state_of(ws) is WebSocketState.CLOSED
    await log.wait()
    assert [(f.opcode, f.payload) for f in log.frames] == [(OP_CLOSE, b"")]
    assert log.eof is None  # the server closed TCP first, as it should


async def test_close_with_code_and_reason(raw_server: StartServer) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        await ws.close(1000, "bye")
        assert ws.closed == Closed(1000, "bye", initiated_locally=True)
        # After a clean local close the stream of events ends normally.
        assert [event async for event in ws] == []
        assert [event async for event in ws.events()] == [Closed(1000, "bye", True)]
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive()
        assert info.value.code == 1000
    await log.wait()
    assert [(f.opcode, f.payload) for f in log.frames] == [(OP_CLOSE, close_payload(1000, b"bye"))]


async def test_close_is_idempotent(raw_server: StartServer) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        async with trio.open_nursery() as nursery:  # two tasks close at the same time
            nursery.start_soon(ws.close, 1000, "first")
            nursery.start_soon(ws.close, 1001, "second")
        await ws.close(4000)
        await ws.close()
        await ws.aclose()
        closed = ws.closed
    await log.wait()
    # Exactly one close frame: that of whichever close() ran first.
    assert [f.opcode for f in log.frames] == [OP_CLOSE]
    assert closed is not None
    assert closed.initiated_locally
    assert log.frames[0].payload == close_payload(closed.code, closed.reason.encode())
    assert (closed.code, closed.reason) in [(1000, "first"), (1001, "second")]


@pytest.mark.parametrize("answers", [False, True], ids=["no-answer", "answer-but-keep-tcp"])
@pytest.mark.parametrize("close_timeout", [None, 3.0])
async def test_close_gives_up_after_close_timeout_and_aborts_tcp(
    raw_server: StartServer,
    autojump_clock: trio.abc.Clock,
    answers: bool,
    close_timeout: float | None,
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        log.values["close"] = await read_until_close(peer, log)
        if answers:
            await peer.send(frame(OP_CLOSE, log.values["close"]))
        await wait_eof(peer, log)  # never closes TCP itself
        log.done.set()

    url = await raw_server(handler)
    fields: dict[str, Any] = {} if close_timeout is None else {"close_timeout": close_timeout}
    timeout = 10.0 if close_timeout is None else close_timeout
    async with trio_mws.open_message_websocket(url, ping_interval=None, **fields) as ws:
        start = trio.current_time()
        await ws.close(1000)  # no exception
        elapsed = trio.current_time() - start
        assert timeout <= elapsed < timeout + 1
        assert state_of(ws) is WebSocketState.CLOSED
        if answers:
            assert ws.closed == Closed(1000, "", initiated_locally=True)
    await log.wait()
    assert log.values["close"] == close_payload(1000)
    assert log.eof is not None, "the client did not close the TCP connection"
    assert timeout <= log.times["eof"] - start < timeout + 1


async def test_close_does_not_raise_when_the_server_resets_instead_of_answering(
    raw_server: StartServer,
) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await read_until_close(peer, ServerLog())
        await reset_connection(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        with trio.fail_after(PROMPTLY):
            await ws.close(1000)  # no exception, and no wait for close_timeout
        assert state_of(ws) is WebSocketState.CLOSED
        assert ws.closed is None


# -- leaving ``async with`` ------------------------------------------------------------------


@pytest.mark.parametrize("form", ["open_message_websocket", "MessageWebSocket"])
async def test_leaving_async_with_normally_sends_1000(raw_server: StartServer, form: str) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    if form == "open_message_websocket":
        async with trio_mws.open_message_websocket(url) as ws:
            await ws.send("hi")
    else:
        ws = trio_mws.MessageWebSocket()
        async with ws:
            await ws.connect(url)
            await ws.send("hi")
    assert state_of(ws) is WebSocketState.CLOSED
    assert ws.closed == Closed(1000, "", initiated_locally=True)
    await log.wait()
    assert [(f.opcode, f.payload) for f in log.frames] == [
        (OP_TEXT, b"hi"),
        (OP_CLOSE, close_payload(1000)),
    ]


class Boom(Exception):
    """The application's own error."""


@pytest.mark.parametrize("form", ["open_message_websocket", "MessageWebSocket"])
async def test_leaving_async_with_by_an_exception_sends_1011_and_propagates_it_unchanged(
    raw_server: StartServer, form: str
) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    cause = KeyError("the cause")
    error = Boom("the application failed")

    async def body(ws: trio_mws.MessageWebSocket) -> None:
        await ws.send("hi")
        try:
            raise cause
        except KeyError:
            raise error from cause

    with pytest.raises(Boom) as info:
        if form == "open_message_websocket":
            async with trio_mws.open_message_websocket(url) as ws:
                await body(ws)
        else:
            ws = trio_mws.MessageWebSocket()
            async with ws:
                await ws.connect(url)
                await body(ws)
    assert info.value is error
    assert info.value.__cause__ is cause
    assert info.value.__context__ is cause
    assert state_of(ws) is WebSocketState.CLOSED
    await log.wait()
    assert [(f.opcode, f.payload[:2]) for f in log.frames] == [
        (OP_TEXT, b"hi"),
        (OP_CLOSE, close_payload(1011)),
    ]


async def test_a_local_close_ends_another_tasks_async_for_normally(echo_url: str) -> None:
    received: list[MessageReceived] = []
    got_one = trio.Event()
    async with trio_mws.open_message_websocket(echo_url) as ws:

        async def reader() -> None:
            async for event in ws:
                received.append(event)
                got_one.set()

        with trio.fail_after(PROMPTLY):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await ws.send("echo me")
                await got_one.wait()
                await ws.close(1000)  # the reader's loop ends without an exception
    assert received == [MessageReceived(UTF8, b"echo me")]
    assert ws.closed == Closed(1000, "", initiated_locally=True)


# -- cancellation and state ------------------------------------------------------------------


async def test_a_cancelled_close_still_closes(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    log = ServerLog()
    url = await raw_server(unresponsive_server(log))
    async with trio_mws.open_message_websocket(url, ping_interval=None) as ws:
        start = trio.current_time()
        with trio.move_on_after(1) as scope:
            await ws.close(1000)  # close_timeout is 10 s: cancelled after 1 s
        assert scope.cancelled_caught
        assert state_of(ws) is WebSocketState.CLOSED
        with pytest.raises(ConnectionClosed):
            await ws.send("closed")
    await log.wait()
    assert log.values["close"] == close_payload(1000)
    assert log.eof is not None
    assert log.times["eof"] - start < 2


async def test_a_close_cancelled_before_it_starts_still_closes(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await wait_eof(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, ping_interval=None) as ws:
        start = trio.current_time()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.close(1000)
        assert state_of(ws) is WebSocketState.CLOSED
    await log.wait()
    assert log.eof is not None
    assert log.times["eof"] - start < 2
    assert all(f.opcode == OP_CLOSE for f in log.frames)


async def test_state_goes_open_closing_closed(raw_server: StartServer) -> None:
    log = ServerLog()
    answer = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        payload = await read_until_close(peer, log)
        await answer.wait()
        await peer.send(frame(OP_CLOSE, payload))
        await peer.stream.aclose()
        log.done.set()

    url = await raw_server(handler)
    ws = trio_mws.MessageWebSocket()
    assert ws.state is WebSocketState.CONNECTING
    async with ws:
        await ws.connect(url)
        assert state_of(ws) is WebSocketState.OPEN
        assert ws.closed is None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.close, 1000)
            await trio.testing.wait_all_tasks_blocked()
            assert state_of(ws) is WebSocketState.CLOSING
            assert ws.closed is None
            answer.set()
        assert state_of(ws) is WebSocketState.CLOSED
        assert ws.closed == Closed(1000, "", initiated_locally=True)
    await log.wait()


async def test_leaving_async_with_while_not_reading_closes_promptly(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """The server floods, the application reads nothing (queue full, reader paused), then
    leaves ``async with``: it reads no more, so the close handshake completes at once, not
    after close_timeout (an explicit close() keeps delivering: see test_connection.py)."""
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        lock = trio.Lock()  # one writer at a time

        async def flood() -> None:
            for _ in range(1000):
                async with lock:
                    await peer.send(frame(OP_TEXT, b"x" * 65536))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            payload = await read_until_close(peer, log)
            async with lock:
                await peer.send(frame(OP_CLOSE, payload))
            nursery.cancel_scope.cancel()
        await peer.stream.aclose()
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, message_queue_size=2) as ws:
        await trio.sleep(5)  # not reading
        start = trio.current_time()
    assert trio.current_time() - start < 1
    assert ws.closed == Closed(1000, "", initiated_locally=True)
    await log.wait()


# -- connection lost without a close frame ---------------------------------------------------


@pytest.mark.parametrize("api", ["receive", "async-for", "events"])
@pytest.mark.parametrize(
    ("how", "status"),
    [("eof", WebErrorStatus.DISCONNECTED), ("reset", WebErrorStatus.CONNECTION_RESET)],
    ids=["eof", "reset"],
)
async def test_connection_lost_without_a_close_frame(
    raw_server: StartServer, api: str, how: str, status: WebErrorStatus
) -> None:
    got_it = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, b"last words"))
        await got_it.wait()  # a reset may discard unread data: go once it was read
        if how == "eof":
            await peer.stream.aclose()
        else:
            await reset_connection(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        received: list[object] = []
        with pytest.raises(ConnectionClosed) as info:
            if api == "receive":
                while True:
                    received.append(await ws.receive())
                    got_it.set()
            elif api == "async-for":
                async for event in ws:
                    received.append(event)
                    got_it.set()
            else:
                async for item in ws.events():
                    received.append(item)
                    got_it.set()
        assert received == [MessageReceived(UTF8, b"last words")]  # and no Closed event
        assert info.value.code == 1006
        assert info.value.status is status
        assert ws.closed is None
        assert state_of(ws) is WebSocketState.CLOSED
        with pytest.raises(ConnectionClosed) as again:
            await ws.receive()
        assert (again.value.code, again.value.status) == (1006, status)
        with pytest.raises(ConnectionClosed) as on_send:
            await ws.send("anyone?")
        assert on_send.value.status is status
        with trio.fail_after(1):
            await ws.close(1000)  # a no-op
        assert ws.closed is None


# -- protocol errors from the server ---------------------------------------------------------

PROTOCOL_ERRORS = [
    pytest.param(frame(OP_TEXT, b"x", rsv=2), 1002, id="rsv2"),
    pytest.param(frame(OP_TEXT, b"x", rsv=4), 1002, id="rsv1-without-compression"),
    pytest.param(frame(OP_TEXT, b"x", mask=b"abcd"), 1002, id="masked-server-frame"),
    pytest.param(frame(3, b"x"), 1002, id="reserved-opcode"),
    pytest.param(frame(OP_PING, b"", fin=False), 1002, id="fragmented-ping"),
    pytest.param(frame(OP_PING, b"x" * 126), 1002, id="long-ping"),
    pytest.param(frame(0, b"x"), 1002, id="continuation-without-start"),
    pytest.param(
        frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), 1002, id="no-continuation"
    ),
    pytest.param(frame(OP_CLOSE, b"\x03"), 1002, id="one-byte-close"),
    pytest.param(frame(OP_CLOSE, close_payload(1005)), 1002, id="close-code-1005"),
    pytest.param(frame(OP_TEXT, b"\xff\xfe"), 1007, id="invalid-utf8"),
    pytest.param(
        frame(OP_TEXT, b"ok \xe2", fin=False) + frame(0, b"("), 1007, id="invalid-utf8-in-fragments"
    ),
    pytest.param(frame(OP_CLOSE, close_payload(1000, b"\xff")), 1007, id="invalid-utf8-reason"),
]


@pytest.mark.parametrize(("bad", "code"), PROTOCOL_ERRORS)
async def test_a_protocol_error_closes_with_its_code_and_drops_tcp_promptly(
    raw_server: StartServer, bad: bytes, code: int
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, b"fine") + bad)
        start = trio.current_time()
        log.values["close"] = await read_until_close(peer, log)
        with trio.move_on_after(PROMPTLY):  # the server does not answer: the client must go
            await wait_eof(peer, log)
        log.values["waited"] = trio.current_time() - start
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        assert await ws.receive() == MessageReceived(UTF8, b"fine")
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive()
        assert info.value.code == code
        with pytest.raises(ConnectionClosed):
            await ws.send("after the error")
    await log.wait(2 * PROMPTLY)
    assert log.values["close"][:2] == close_payload(code)
    assert log.eof is not None, "the client kept the TCP connection open"
    assert log.values["waited"] < PROMPTLY


# -- run_message_websocket -------------------------------------------------------------------


async def test_run_message_websocket_returns_after_close(echo_url: str) -> None:
    with trio.fail_after(PROMPTLY):
        async with trio.open_nursery() as nursery:
            ws: trio_mws.MessageWebSocket = await nursery.start(
                trio_mws.run_message_websocket, echo_url
            )
            assert state_of(ws) is WebSocketState.OPEN
            await ws.send("through the nursery")
            assert (await ws.receive()).text == "through the nursery"
            await ws.close()
    assert state_of(ws) is WebSocketState.CLOSED
    assert ws.closed == Closed(1005, "", initiated_locally=True)


@pytest.mark.parametrize("how", ["close-frame", "eof"])
async def test_run_message_websocket_returns_when_the_server_goes(
    raw_server: StartServer, how: str
) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        if how == "close-frame":
            await peer.send(close_frame(1001, b"shutting down"))
            await read_until_close(peer, ServerLog())
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(PROMPTLY):
        async with trio.open_nursery() as nursery:
            ws: trio_mws.MessageWebSocket = await nursery.start(trio_mws.run_message_websocket, url)
    assert state_of(ws) is WebSocketState.CLOSED
    if how == "close-frame":
        assert ws.closed == Closed(1001, "shutting down", initiated_locally=False)
    else:
        assert ws.closed is None
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive()
        assert info.value.status is WebErrorStatus.DISCONNECTED
