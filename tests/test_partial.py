"""PARTIAL_MESSAGE receive mode: data delivered as it arrives, text chunks that always decode,
and ``max_message_size`` bounding chunks instead of messages."""

from __future__ import annotations

import pytest
import trio

import trio_mws
from trio_mws import MessageReceived, MessageWebSocketReceiveMode, SocketMessageType

from .mws_helpers import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_TEXT,
    ServerLog,
    StartServer,
    answer_close,
)
from .rawserver import RawPeer, frame

PARTIAL = MessageWebSocketReceiveMode.PARTIAL_MESSAGE
UTF8 = SocketMessageType.UTF8
BINARY = SocketMessageType.BINARY
MiB = 1024 * 1024


async def receive_message(ws: trio_mws.MessageWebSocket) -> list[MessageReceived]:
    """The events of one message: up to and including the one with is_message_complete."""
    events = [await ws.receive()]
    while not events[-1].is_message_complete:
        events.append(await ws.receive())
    return events


def check_pieces(events: list[MessageReceived], kind: SocketMessageType) -> bytes:
    """Check the shape of a message's events; return the joined data."""
    assert [event.message_type for event in events] == [kind] * len(events)
    assert [event.is_message_complete for event in events] == [False] * (len(events) - 1) + [True]
    return b"".join(event.data for event in events)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def test_a_large_frame_is_delivered_as_it_arrives(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """One 1 MiB binary frame, written in 8 TCP writes a second apart: the application gets
    the first data long before the end, in several events, only the last one complete."""
    payload = bytes(range(256)) * (4 * 1024)
    wire = frame(OP_BINARY, payload)
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        for chunk in pieces(wire, len(wire) // 8 + 1):
            await peer.send(chunk)
            await trio.sleep(1)
        log.times["last write"] = trio.current_time() - 1
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL, ping_interval=None) as ws:
        events = [await ws.receive()]
        first_at = trio.current_time()
        while not events[-1].is_message_complete:
            events.append(await ws.receive())
        assert check_pieces(events, BINARY) == payload
        assert len(events) >= 8
        assert all(event.data for event in events)
    await log.wait()
    assert first_at < log.times["last write"]


async def test_text_chunks_always_decode_even_when_the_server_splits_characters(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """A text message in two frames; the frame boundary and every TCP write boundary fall
    inside multi-byte characters. Every event's .text decodes and they join up."""
    text = "𝄞€é-" * 3000
    data = text.encode()
    split = data.index("€".encode(), len(data) // 2) + 1  # the frame boundary splits a "€"
    wire = frame(OP_TEXT, data[:split], fin=False) + frame(OP_CONTINUATION, data[split:])
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        for chunk in pieces(wire, 1001):  # 1001: write boundaries land inside characters
            await peer.send(chunk)
            await trio.sleep(0.1)
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL, ping_interval=None) as ws:
        events = await receive_message(ws)
        assert check_pieces(events, UTF8) == data
        assert "".join(event.text for event in events) == text
        assert len(events) > 10
    await log.wait()


async def test_max_message_size_bounds_chunks_not_messages(raw_server: StartServer) -> None:
    """max_message_size=1000: 10 KB messages are not too big; they come in chunks of at most
    1000 bytes (text chunks on character boundaries)."""
    binary = bytes(range(250)) * 40
    text = "aé€𝄞" * 1000  # 10 000 UTF-8 bytes
    fragmented = b"\x07" * 3000
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(
            frame(OP_BINARY, binary)
            + frame(OP_TEXT, text.encode())
            + frame(OP_BINARY, fragmented[:2500], fin=False)
            + frame(OP_CONTINUATION, fragmented[2500:])
        )
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(
        url, receive_mode=PARTIAL, max_message_size=1000
    ) as ws:
        events = await receive_message(ws)
        assert check_pieces(events, BINARY) == binary
        assert max(len(event.data) for event in events) <= 1000
        assert len(events) >= 10

        events = await receive_message(ws)
        assert check_pieces(events, UTF8) == text.encode()
        assert "".join(event.text for event in events) == text
        assert max(len(event.data) for event in events) <= 1000

        events = await receive_message(ws)
        assert check_pieces(events, BINARY) == fragmented
        assert max(len(event.data) for event in events) <= 1000

        assert ws.state is trio_mws.WebSocketState.OPEN
        await ws.send("still open")
    await log.wait()
    assert [(f.opcode, f.payload) for f in log.data_frames()] == [(OP_TEXT, b"still open")]


async def test_a_message_over_the_default_limit_streams_through(raw_server: StartServer) -> None:
    """In PARTIAL_MESSAGE mode no message is too big: 20 MiB pass the 16 MiB default."""
    size = 20 * MiB
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_BINARY, bytes(size)) + frame(OP_TEXT, b"next"))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL) as ws:
        assert ws.control.max_message_size == 16 * MiB
        total = 0
        while True:
            event = await ws.receive()
            assert len(event.data) <= 16 * MiB
            assert event.data.count(0) == len(event.data)
            total += len(event.data)
            if event.is_message_complete:
                break
        assert total == size
        assert await ws.receive() == MessageReceived(UTF8, b"next", True)
    await log.wait()


@pytest.mark.parametrize(
    ("opcode", "payload", "kind"),
    [
        (OP_TEXT, "petit ✓".encode(), UTF8),
        (OP_BINARY, b"\x00small", BINARY),
        (OP_TEXT, b"", UTF8),
        (OP_BINARY, b"", BINARY),
    ],
    ids=["text", "binary", "empty-text", "empty-binary"],
)
async def test_a_small_message_is_one_complete_event(
    raw_server: StartServer, opcode: int, payload: bytes, kind: SocketMessageType
) -> None:
    log = ServerLog()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(opcode, payload) + frame(OP_TEXT, b"next"))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL) as ws:
        assert await ws.receive() == MessageReceived(kind, payload, True)
        assert await ws.receive() == MessageReceived(UTF8, b"next", True)
    await log.wait()


async def test_the_end_of_a_non_final_frame_does_not_complete_the_message(
    raw_server: StartServer,
) -> None:
    log = ServerLog()
    parts = [b"one ", b"two ", b"three"]

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(OP_BINARY, parts[0], fin=False))
        await peer.send(frame(OP_CONTINUATION, parts[1], fin=False))
        await peer.send(frame(OP_CONTINUATION, parts[2]))
        await answer_close(peer, log)
        log.done.set()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL) as ws:
        events = await receive_message(ws)
        assert check_pieces(events, BINARY) == b"one two three"
    await log.wait()


async def test_partial_mode_against_an_echo_server(echo_url: str) -> None:
    payload = bytes(range(256)) * (4 * 1024)
    async with trio_mws.open_message_websocket(
        echo_url, receive_mode=PARTIAL, max_message_size=64 * 1024
    ) as ws:
        await ws.send(payload)
        events = await receive_message(ws)
        assert check_pieces(events, BINARY) == payload
        assert max(len(event.data) for event in events) <= 64 * 1024
        assert len(events) >= 16
        await ws.send("short")
        assert await ws.receive() == MessageReceived(UTF8, b"short", True)
