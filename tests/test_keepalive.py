"""Keepalive: pings with a pong deadline, ``ws.ping()``, latency and unsolicited pongs.

Everything runs on virtual time (``autojump_clock``): minutes pass in milliseconds.
"""

from __future__ import annotations

import pytest
import trio

import trio_mws
from trio_mws import ConnectionClosed, WebErrorStatus, WebSocketState

from .mws_helpers import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ServerLog,
    StartServer,
    answer_close,
    read_frame,
    read_until_close,
    wait_eof,
)
from .rawserver import RawPeer, close_payload, frame


async def test_unanswered_pings_fail_the_connection_with_timeout(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """ping_interval=20 (and the default ping_timeout of 20): a server that never answers
    pings is given up after about 40 s; the client sends close 1011 and drops TCP."""
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        log.values["close"] = await read_until_close(peer, log, answer_pings=False)
        await wait_eof(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, ping_interval=20) as ws:
        start = trio.current_time()
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive()
        elapsed = trio.current_time() - start
        assert 40 <= elapsed < 45
        assert info.value.status is WebErrorStatus.TIMEOUT
        assert info.value.code == 1006
        assert WebErrorStatus(trio_mws.WebSocketError.get_status(info.value)) is (
            WebErrorStatus.TIMEOUT
        )
        assert ws.state is WebSocketState.CLOSED
        assert ws.closed is None
        with pytest.raises(ConnectionClosed) as on_send:
            await ws.send("anyone?")
        assert on_send.value.status is WebErrorStatus.TIMEOUT
    await log.wait()
    assert log.values["close"][:2] == close_payload(1011)
    pings = [f for f in log.frames if f.opcode == OP_PING]
    assert len(pings) == 1
    assert log.times["close"] - start == pytest.approx(40, abs=1)
    assert log.eof is not None


async def test_a_server_that_answers_keeps_the_connection_open(
    echo_url: str, autojump_clock: trio.abc.Clock
) -> None:
    async with trio_mws.open_message_websocket(echo_url, ping_interval=20) as ws:
        assert ws.information.latency is None
        await trio.sleep(300)
        assert ws.state is WebSocketState.OPEN
        latency = ws.information.latency
        assert isinstance(latency, float)
        assert 0 <= latency < 20
        await ws.send("still here")
        assert (await ws.receive()).text == "still here"


async def test_pings_are_sent_every_ping_interval(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await answer_close(peer, log)  # answers every ping
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, ping_interval=20) as ws:
        await trio.sleep(101)
        assert ws.state is WebSocketState.OPEN
    await log.wait()
    pings = [f for f in log.frames if f.opcode == OP_PING]
    assert len(pings) == 5
    assert len({f.payload for f in pings}) == 5  # each ping can be told apart
    assert [f.opcode for f in log.frames][-1] == OP_CLOSE


async def test_ping_interval_none_sends_no_pings(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, ping_interval=None) as ws:
        await trio.sleep(1000)
        assert ws.state is WebSocketState.OPEN
    await log.wait()
    assert [f.opcode for f in log.frames] == [OP_CLOSE]


async def test_a_paused_reader_is_not_a_dead_server(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """The application stops reading for two minutes while the server keeps sending: the
    server's pongs are stuck behind unread data, which must not count as a dead server."""
    count, size = 200, 64 * 1024
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        lock = trio.Lock()  # one writer at a time: pongs queue behind the data

        async def flood() -> None:
            for i in range(count):
                async with lock:
                    await peer.send(frame(OP_TEXT, str(i).encode().rjust(size)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            while True:
                received = await read_frame(peer)
                log.frames.append(received)
                if received.opcode in (OP_PING, OP_CLOSE):
                    answer = OP_PONG if received.opcode == OP_PING else OP_CLOSE
                    async with lock:
                        await peer.send(frame(answer, received.payload))
                if received.opcode == OP_CLOSE:
                    break
        await peer.stream.aclose()
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, ping_interval=20, message_queue_size=2) as ws:
        await trio.sleep(120)
        assert ws.state is WebSocketState.OPEN
        for i in range(count):
            assert (await ws.receive()).text.strip() == str(i)
    await log.wait()


# -- ws.ping() -------------------------------------------------------------------------------


async def test_ping_returns_the_round_trip_time(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        rtt = await ws.ping()
        assert isinstance(rtt, float)
        assert 0 <= rtt < 5
        rtt = await ws.ping(b"with a payload")
        assert isinstance(rtt, float)
        assert ws.information.latency == rtt


async def test_ping_measures_the_servers_delay(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        ping = await read_frame(peer)
        await trio.sleep(3)
        await peer.send(frame(OP_PONG, ping.payload))
        await answer_close(peer, log)
        log.values["ping"] = ping
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, ping_interval=None) as ws:
        assert await ws.ping(b"abc") == pytest.approx(3, abs=0.1)
        assert ws.information.latency == pytest.approx(3, abs=0.1)
    await log.wait()
    assert (log.values["ping"].opcode, log.values["ping"].payload) == (OP_PING, b"abc")


async def test_ping_argument_errors(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        with pytest.raises(ValueError):
            await ws.ping(b"x" * 126)
        with pytest.raises(TypeError):
            await ws.ping("text")  # type: ignore[arg-type]
        assert isinstance(await ws.ping(b"x" * 125), float)


async def test_a_pending_ping_raises_connection_closed_when_the_connection_goes(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await read_frame(peer)  # the ping: never answered
        await trio.sleep(5)
        await peer.stream.aclose()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, ping_interval=None) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.ping()
        assert info.value.status is WebErrorStatus.DISCONNECTED


# -- unsolicited pongs -----------------------------------------------------------------------


async def test_unsolicited_pongs_are_sent_every_interval(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    ws = trio_mws.MessageWebSocket()
    ws.control.desired_unsolicited_pong_interval = 5
    ws.control.ping_interval = None
    assert ws.control.actual_unsolicited_pong_interval is None
    async with ws:
        await ws.connect(url)
        assert ws.control.actual_unsolicited_pong_interval == 5
        await trio.sleep(26)
        await ws.send("done")
    await log.wait()
    opcodes = [f.opcode for f in log.frames]
    assert opcodes == [OP_PONG] * 5 + [OP_TEXT, OP_CLOSE]


async def test_no_unsolicited_pongs_by_default(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        assert ws.control.desired_unsolicited_pong_interval is None
        assert ws.control.actual_unsolicited_pong_interval is None
