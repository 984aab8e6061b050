"""PARTIAL_MESSAGE streaming: data is delivered as it arrives, also in the middle of a frame,
in chunks of at most max_message_size, in bounded memory, with back-pressure.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trio

import trio_mws
from trio_mws import MessageReceived, MessageWebSocketReceiveMode, SocketMessageType

from .mws_helpers import peak_memory
from .rawserver import Handler, RawPeer, close_payload, frame

RawServer = Callable[[Handler], Awaitable[str]]

PROMPT = 5.0
MiB = 1024 * 1024
GiB = 1024 * MiB

PARTIAL = MessageWebSocketReceiveMode.PARTIAL_MESSAGE
UTF8 = SocketMessageType.UTF8
BINARY = SocketMessageType.BINARY

#: The server's reusable 1 MiB send buffer: byte ``p`` of the stream is ``(p % MiB) % 251``.
PIECE = (bytes(range(251)) * (MiB // 251 + 1))[:MiB]


def expected_byte(position: int) -> int:
    return (position % MiB) % 251


def binary_header(length: int, *, fin: bool = True) -> bytes:
    """The header of an unmasked binary frame of ``length`` bytes (header only)."""
    return frame(2, length=length, fin=fin)


@dataclass
class StreamLog:
    """The streaming server's side of the story."""

    sent: int = 0  # payload bytes the server has handed over (or is handing over) so far
    finished_at: float | None = None
    close_code: int | None = None
    first_seen: trio.Event = field(default_factory=trio.Event)
    waited_for_client: bool | None = None
    done: trio.Event = field(default_factory=trio.Event)


def streaming_server(log: StreamLog, total: int) -> Handler:
    """One binary frame of ``total`` bytes: header and 1 MiB, then wait until the client has
    delivered its first chunk, then the rest in 1 MiB ``send_all`` calls from one buffer."""
    assert total % MiB == 0

    async def handler(peer: RawPeer) -> None:
        try:
            await peer.accept()
            log.sent = MiB  # counted before the send: the client may run in the middle of it
            await peer.send(binary_header(total) + PIECE)
            with trio.move_on_after(PROMPT):
                await log.first_seen.wait()
            log.waited_for_client = log.first_seen.is_set()
            for _ in range(total // MiB - 1):
                log.sent += MiB
                await peer.send(PIECE)
            log.finished_at = time.perf_counter()
            await peer.send(frame(8, close_payload(1000)))
            log.close_code = await peer.read_close()
            await peer.stream.aclose()
        finally:
            log.done.set()

    return handler


@pytest.mark.parametrize("total", [256 * MiB, 1 * GiB], ids=["256MiB", "1GiB"])
async def test_one_huge_frame_streams_as_it_arrives(raw_server: RawServer, total: int) -> None:
    log = StreamLog()
    url = await raw_server(streaming_server(log, total))
    received = 0
    chunks = 0
    largest = 0
    sent_at_first: int | None = None
    last: MessageReceived | None = None
    started = time.perf_counter()
    with peak_memory() as peak, trio.fail_after(120):
        async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL) as ws:
            async for event in ws:
                if sent_at_first is None:
                    sent_at_first = log.sent
                    log.first_seen.set()
                data = event.data
                assert event.message_type is BINARY
                assert data, "empty chunk in the middle of a message"
                assert data[0] == expected_byte(received)
                assert data[-1] == expected_byte(received + len(data) - 1)
                assert data[len(data) // 2] == expected_byte(received + len(data) // 2)
                assert not last or not last.is_message_complete, "data after the last chunk"
                received += len(data)
                largest = max(largest, len(data))
                chunks += 1
                last = event
        await log.done.wait()
    elapsed = time.perf_counter() - started
    print(
        f"\nstream {total // MiB} MiB: {elapsed:.1f} s ({total / MiB / elapsed:.0f} MiB/s), "
        f"{chunks} chunks, largest {largest / 1024:.0f} KiB, peak {peak[0] / MiB:.1f} MiB"
    )
    # Delivered as it arrives, in the middle of the frame: the first chunk reached the
    # application while the server had sent only the first MiB of the frame (and was waiting).
    assert sent_at_first == MiB
    assert log.waited_for_client is True
    assert received == total
    assert chunks > 1
    assert largest <= 16 * MiB
    assert last is not None and last.is_message_complete
    assert ws.closed == trio_mws.Closed(1000, "", initiated_locally=False)
    assert log.close_code == 1000
    assert peak[0] < 64 * MiB, f"peak {peak[0] / MiB:.1f} MiB"


async def test_first_bytes_of_a_frame_are_delivered_without_waiting(
    raw_server: RawServer,
) -> None:
    """Ten bytes of a 1000-byte frame, and of a fragmented message's first frame: each is
    delivered before the server sends anything more (it waits for the application)."""
    seen = [trio.Event() for _ in range(4)]
    timed_out: list[int] = []

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        steps = [
            binary_header(1000) + bytes(10),
            bytes(990),
            frame(1, b"fragment one", fin=False),
            frame(0, b" and two"),
        ]
        for index, step in enumerate(steps):
            await peer.send(step)
            with trio.move_on_after(PROMPT) as scope:
                await seen[index].wait()
            if scope.cancelled_caught:
                timed_out.append(index)
                seen[index].set()
        await peer.send(frame(8, close_payload(1000)))
        await peer.read_close()
        await peer.stream.aclose()

    url = await raw_server(handler)
    events: list[MessageReceived] = []
    with trio.fail_after(5 * PROMPT):
        async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL) as ws:
            step = 0
            async for event in ws:
                events.append(event)
                if step < len(seen):
                    seen[step].set()
                    step += 1
    assert timed_out == [], f"steps the client sat on: {timed_out}"
    assert events == [
        MessageReceived(BINARY, bytes(10), False),
        MessageReceived(BINARY, bytes(990), True),
        MessageReceived(UTF8, b"fragment one", False),
        MessageReceived(UTF8, b" and two", True),
    ]


async def test_text_chunks_end_on_character_boundaries(raw_server: RawServer) -> None:
    """A character split by the network is held back until it is whole, then delivered."""
    released = trio.Event()
    wire = "héllo €uro 𝄞!".encode()
    cut = wire.index("€".encode()) + 1  # in the middle of the 3-byte euro sign

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        header = frame(1, wire)[:2]
        await peer.send(header + wire[:cut])
        with trio.move_on_after(PROMPT):
            await released.wait()
        await peer.send(wire[cut:])
        await peer.send(frame(8, close_payload(1000)))
        await peer.read_close()
        await peer.stream.aclose()

    url = await raw_server(handler)
    events: list[MessageReceived] = []
    with trio.fail_after(3 * PROMPT):
        async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL) as ws:
            async for event in ws:
                events.append(event)
                released.set()
    assert events[0] == MessageReceived(UTF8, "héllo ".encode(), False)
    assert "".join(event.text for event in events) == wire.decode()
    assert events[-1].is_message_complete


@pytest.mark.parametrize("limit", [1, 7, 1000, 4096])
async def test_chunks_are_at_most_max_message_size(raw_server: RawServer, limit: int) -> None:
    binary = bytes(range(256)) * 20
    text = "añb€c𝄞" * 300

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(2, binary) + frame(1, text.encode()))
        await peer.send(frame(8, close_payload(1000)))
        await peer.read_close()
        await peer.stream.aclose()

    url = await raw_server(handler)
    with trio.fail_after(3 * PROMPT):
        async with trio_mws.open_message_websocket(
            url, receive_mode=PARTIAL, max_message_size=limit
        ) as ws:
            events = [event async for event in ws]
    binary_events = [event for event in events if event.message_type is BINARY]
    text_events = [event for event in events if event.message_type is UTF8]
    assert b"".join(event.data for event in binary_events) == binary
    assert "".join(event.text for event in text_events) == text
    for group in (binary_events, text_events):
        assert [event.is_message_complete for event in group] == [False] * (len(group) - 1) + [True]
    assert all(len(event.data) <= limit for event in binary_events)
    # A character is never split: with a limit below 4 bytes a chunk may hold one whole
    # character that is longer than the limit, otherwise the limit holds for text too.
    for event in text_events:
        assert len(event.data) <= max(limit, 4)
        assert len(event.data) <= limit or len(event.text) == 1


async def test_slow_application_stalls_the_server(raw_server: RawServer) -> None:
    """Back-pressure: while the application does not read, the client stops reading, so a
    server streaming 256 MiB cannot finish; once the application reads, everything arrives."""
    total = 256 * MiB
    log = StreamLog()
    log.first_seen.set()  # this server does not wait for the first chunk
    url = await raw_server(streaming_server(log, total))
    received = 0
    with peak_memory() as peak, trio.fail_after(120):
        async with trio_mws.open_message_websocket(url, receive_mode=PARTIAL) as ws:
            await trio.sleep(1.5)  # not reading
            sent_while_paused = log.sent
            assert log.finished_at is None
            async for event in ws:
                received += len(event.data)
        await log.done.wait()
    print(f"\nsent while paused: {sent_while_paused / MiB:.0f} MiB, peak {peak[0] / MiB:.1f} MiB")
    assert sent_while_paused < 64 * MiB
    assert received == total
    assert peak[0] < 64 * MiB


async def test_full_message_mode_reassembles_a_streamed_frame(raw_server: RawServer) -> None:
    """FULL_MESSAGE: a 12 MiB frame sent in pieces is one event, as large as sent."""
    total = 12 * MiB
    log = StreamLog()
    log.first_seen.set()
    url = await raw_server(streaming_server(log, total))
    with trio.fail_after(60):
        async with trio_mws.open_message_websocket(url) as ws:
            events = [event async for event in ws]
    assert len(events) == 1
    assert events[0].is_message_complete
    assert events[0].data == PIECE * 12
