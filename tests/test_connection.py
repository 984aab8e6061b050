"""The connection core: fragmented sends and closing, messages around a close, timeouts,
closing before or during connect, keepalive against a paused reader, and schedule points.

The servers are raw scripted servers over real sockets; time-dependent tests run on virtual
time (``autojump_clock``). The tests of issue 7's defects 2-6 and 8 failed on the code before
its connection core (the cancel-point check already passed).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trio_mws
from trio_mws import (
    Closed,
    ConnectError,
    ConnectionClosed,
    MessageReceived,
    WebErrorStatus,
    WebSocketState,
)

from .mws_helpers import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PROMPTLY,
    ServerLog,
    StartServer,
    answer_close,
    read_frame,
    read_until_close,
    state_of,
    wait_eof,
)
from .rawserver import Handler, RawPeer, close_payload, frame


def closing_server(log: ServerLog) -> Handler:
    """Accept, log frames until the client's close frame, echo it and close TCP."""

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await answer_close(peer, log)
        log.done.set()

    return handler


def silent_server(log: ServerLog) -> Handler:
    """Accept, read the client's close frame, never answer: wait for the client's TCP close."""

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        log.values["close"] = await read_until_close(peer, log)
        await wait_eof(peer, log)
        log.done.set()

    return handler


# -- a fragmented message in progress (defect 2) ---------------------------------------------


@pytest.mark.parametrize("ending", ["close", "lost"])
async def test_a_sender_waiting_behind_a_fragmented_message_wakes_on_close_or_loss(
    raw_server: StartServer, ending: str
) -> None:
    """Task A starts a fragmented message and stalls; task B's send() waits behind it. When
    the connection closes (or is lost), B gets ConnectionClosed at once."""
    lose = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        if ending == "lost":
            await read_frame(peer)  # the first fragment
            await lose.wait()
            await peer.stream.aclose()
            return
        await answer_close(peer, ServerLog())

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, close_timeout=PROMPTLY) as ws:
        await ws.send_nonfinal_frame("first half, ")
        outcome: list[BaseException] = []

        async def other_sender() -> None:
            try:
                await ws.send("waiting behind the fragmented message")
            except ConnectionClosed as exc:
                outcome.append(exc)

        with trio.fail_after(PROMPTLY):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(other_sender)
                await trio.testing.wait_all_tasks_blocked()
                if ending == "close":
                    await ws.close(1000)
                else:
                    lose.set()
        assert len(outcome) == 1
        assert isinstance(outcome[0], ConnectionClosed)


async def test_a_task_that_ends_mid_message_does_not_block_other_senders(
    raw_server: StartServer,
) -> None:
    """The task owning a fragmented message ends without its final frame: the message can
    never be completed, so the connection fails (close 1011) instead of blocking every other
    sender forever."""
    log = ServerLog()
    url = await raw_server(closing_server(log))
    async with trio_mws.open_message_websocket(url) as ws:

        async def abandon() -> None:
            await ws.send_nonfinal_frame("never finished")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(abandon)
        with trio.fail_after(PROMPTLY), pytest.raises(ConnectionClosed) as info:
            await ws.send("after the abandoned message")
        assert "fragmented message" in str(info.value)
    await log.wait()
    assert log.close_frames()[0].payload[:2] == close_payload(1011)


# -- messages that arrived before the close frame (defect 3) ---------------------------------


async def test_messages_before_the_close_frame_reach_a_task_that_keeps_reading(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """One task iterates slowly, another calls close(): the server's 30 messages sent before
    its close frame all reach the iterating task, then the iteration ends cleanly."""

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        for number in range(30):
            await peer.send(frame(OP_TEXT, b"message %d" % number))
        payload = await read_until_close(peer, ServerLog())
        await peer.send(frame(OP_CLOSE, payload))
        await peer.stream.aclose()

    url = await raw_server(handler)
    received: list[str] = []
    async with trio_mws.open_message_websocket(url, message_queue_size=2) as ws:

        async def iterate() -> None:
            async for event in ws:
                received.append(event.text)
                await trio.sleep(0.1)  # a slow application, but a reading one

        async with trio.open_nursery() as nursery:
            nursery.start_soon(iterate)
            await trio.sleep(0.15)
            await ws.close(1000)
        assert ws.closed == Closed(1000, "", initiated_locally=True)
    assert received == [f"message {number}" for number in range(30)]


async def test_close_with_an_application_that_does_not_read_waits_at_most_close_timeout(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """The server floods, nobody reads, the application calls close(): close() returns after
    close_timeout at the latest; what was queued can still be read, then ConnectionClosed."""

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        for _ in range(1000):
            await peer.send(frame(OP_TEXT, b"x" * 65536))
        await wait_eof(peer, ServerLog())

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, message_queue_size=2, close_timeout=3) as ws:
        await trio.sleep(5)  # not reading
        start = trio.current_time()
        await ws.close(1000)
        assert trio.current_time() - start <= 3 + 0.5
        assert state_of(ws) is WebSocketState.CLOSED
        received = 0
        with pytest.raises(ConnectionClosed) as info:
            while True:
                received += len((await ws.receive()).data)
        assert received >= 2 * 65536
        assert info.value.status is WebErrorStatus.TIMEOUT


# -- timeouts are TIMEOUT (defect 4) ---------------------------------------------------------


async def test_a_close_that_times_out_is_reported_as_timeout(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    log = ServerLog()
    url = await raw_server(silent_server(log))
    async with trio_mws.open_message_websocket(url, close_timeout=2) as ws:
        await ws.close(1000)
        assert ws.closed is None
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive()
        assert info.value.status is WebErrorStatus.TIMEOUT
        with pytest.raises(ConnectionClosed) as on_send:
            await ws.send("late")
        assert on_send.value.status is WebErrorStatus.TIMEOUT
    await log.wait()
    assert log.values["close"][:2] == close_payload(1000)


# -- closing before or during connect (defect 5) ---------------------------------------------


async def test_wait_closed_after_closing_a_socket_that_never_connected() -> None:
    ws = trio_mws.MessageWebSocket()
    async with ws:
        await ws.close()
        assert ws.state is WebSocketState.CLOSED
        with trio.fail_after(PROMPTLY):
            await ws.wait_closed()


async def test_close_during_connect_cancels_the_connect(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """close() while connect() waits for the server's answer: connect() raises ConnectError
    (OPERATION_CANCELED) promptly, the socket is CLOSED and wait_closed() returns."""

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        await trio.sleep(1000)  # never answers

    url = await raw_server(handler)
    ws = trio_mws.MessageWebSocket()
    async with ws:
        outcome: list[BaseException] = []

        async def connect() -> None:
            try:
                await ws.connect(url)
            except ConnectError as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(connect)
            await trio.sleep(1)
            start = trio.current_time()
            await ws.close()
            with trio.fail_after(PROMPTLY):
                await ws.wait_closed()
        assert trio.current_time() - start < 1
        assert len(outcome) == 1
        assert isinstance(outcome[0], ConnectError)
        assert outcome[0].status is WebErrorStatus.OPERATION_CANCELED
        assert state_of(ws) is WebSocketState.CLOSED
        with pytest.raises(RuntimeError):
            await ws.connect(url)


# -- keepalive and a paused reader (defect 6) ------------------------------------------------


async def test_keepalive_does_not_blame_the_server_for_time_the_reader_was_paused(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """ping_interval=5, ping_timeout=5: the ping goes out at t=5; the application does not
    read until t=9.5 (the reader is paused: the pong may wait in our own buffers); the pong is
    processed at t=12. Only 2.5 s of the window counted against the server: no TIMEOUT."""
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, b"one") + frame(OP_TEXT, b"two") + frame(OP_TEXT, b"3"))
        ping = await read_frame(peer)
        assert ping.opcode == OP_PING
        log.times["ping"] = trio.current_time()
        await trio.sleep_until(start + 12)
        await peer.send(frame(OP_PONG, ping.payload))
        await answer_close(peer, log)
        log.done.set()

    start = trio.current_time()
    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(
        url, ping_interval=5, ping_timeout=5, message_queue_size=1
    ) as ws:
        await trio.sleep_until(start + 9.5)
        texts = [(await ws.receive()).text for _ in range(3)]
        await trio.sleep_until(start + 13)
        assert state_of(ws) is WebSocketState.OPEN
        assert texts == ["one", "two", "3"]
        assert ws.information.latency is not None
    await log.wait()
    assert log.close_frames()[0].payload[:2] == close_payload(1000)


# -- schedule points (defect 8) --------------------------------------------------------------


async def test_a_stream_of_sends_lets_other_tasks_run(raw_server: StartServer) -> None:
    """4,097 consecutive send()s: another runnable task gets scheduled in between, again and
    again (at least once per few dozen calls)."""
    url = await raw_server(closing_server(ServerLog()))
    async with trio_mws.open_message_websocket(url) as ws:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await trio.lowlevel.cancel_shielded_checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.lowlevel.checkpoint()
            before = ticks
            for _ in range(4097):
                await ws.send(b"x")
            during = ticks - before
            stop = True
        assert during >= 4097 // 64


async def test_a_stream_of_receives_lets_other_tasks_run(raw_server: StartServer) -> None:
    """4,000 messages already queued: receiving them lets another task run in between."""
    count = 4000
    all_queued = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(b"".join(frame(OP_TEXT, b"m") for _ in range(count)))
        await peer.send(frame(OP_PING, b"after"))
        # The pong comes after the reader has queued every message sent before the ping.
        assert (await read_frame(peer)).opcode == OP_PONG
        all_queued.set()
        await answer_close(peer, ServerLog())

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, message_queue_size=count) as ws:
        with trio.fail_after(PROMPTLY):
            await all_queued.wait()
        first: MessageReceived = await ws.receive()
        assert first.text == "m"
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await trio.lowlevel.cancel_shielded_checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.lowlevel.checkpoint()
            before = ticks
            for _ in range(count - 1):
                await ws.receive()
            during = ticks - before
            stop = True
        assert during >= (count - 1) // 64


async def test_send_and_receive_are_cancel_points(raw_server: StartServer) -> None:
    url = await raw_server(closing_server(ServerLog()))
    async with trio_mws.open_message_websocket(url) as ws:
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send("never sent")
        assert scope.cancelled_caught
