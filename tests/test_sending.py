"""Sending: message types on the wire, argument errors, fragmented sends, the output stream,
concurrent senders and cancellation of a blocked send."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import trio_mws
from trio_mws import ConnectionClosed, MessageReceived, SocketMessageType

from .mws_helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PROMPTLY,
    ClientFrame,
    ServerLog,
    StartServer,
    answer_close,
    close_frame,
    read_frame,
    recording_server,
    reset_connection,
)
from .rawserver import RawPeer, frame

UTF8 = SocketMessageType.UTF8
BINARY = SocketMessageType.BINARY


def data(log: ServerLog) -> list[tuple[bool, int, bytes]]:
    """The data frames the server received, as (fin, opcode, payload)."""
    return [(f.fin, f.opcode, f.payload) for f in log.data_frames()]


# -- message types on the wire ---------------------------------------------------------------


async def test_message_types_on_the_wire(raw_server: StartServer) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        await ws.send("str is text ✓")
        await ws.send(b"bytes are binary")
        # Typed Any: the API accepts bytes-like data though send() is annotated str | bytes.
        array: Any = bytearray(b"bytearray")
        view: Any = memoryview(b"memoryview")
        await ws.send(array)
        await ws.send(view)
        await ws.send(b"bytes as text", message_type=UTF8)
        await ws.send("str as UTF8", message_type=UTF8)
        ws.control.message_type = UTF8
        await ws.send(b"bytes, control says UTF8")
        await ws.send(b"\xff explicit binary", message_type=BINARY)
        ws.control.message_type = BINARY
        await ws.send(b"binary again")
    await log.wait()
    assert data(log) == [
        (True, OP_TEXT, "str is text ✓".encode()),
        (True, OP_BINARY, b"bytes are binary"),
        (True, OP_BINARY, b"bytearray"),
        (True, OP_BINARY, b"memoryview"),
        (True, OP_TEXT, b"bytes as text"),
        (True, OP_TEXT, b"str as UTF8"),
        (True, OP_TEXT, b"bytes, control says UTF8"),
        (True, OP_BINARY, b"\xff explicit binary"),
        (True, OP_BINARY, b"binary again"),
    ]
    assert [f.rsv for f in log.frames] == [0] * len(log.frames)
    assert log.frames[-1].opcode == OP_CLOSE


# -- argument errors -------------------------------------------------------------------------

INVALID_UTF8 = [b"\xff", b"abc\xc3", b"\xed\xa0\x80", b"\xc0\xaf"]


async def test_invalid_utf8_sent_as_utf8_raises_value_error_and_sends_nothing(
    raw_server: StartServer,
) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        for bad in INVALID_UTF8:
            with pytest.raises(ValueError):
                await ws.send(bad, message_type=UTF8)
        ws.control.message_type = UTF8
        for bad in INVALID_UTF8:
            with pytest.raises(ValueError):
                await ws.send(bad)
            with pytest.raises(ValueError):
                await ws.output_stream.send_all(bad)
            with pytest.raises(ValueError):
                await ws.send_final_frame(bad)
        assert ws.state is trio_mws.WebSocketState.OPEN
        await ws.send(b"valid")
    await log.wait()
    assert data(log) == [(True, OP_TEXT, b"valid")]


async def test_str_sent_as_binary_raises_type_error(raw_server: StartServer) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        with pytest.raises(TypeError):
            await ws.send("text", message_type=BINARY)
        await ws.send("still fine")
    await log.wait()
    assert data(log) == [(True, OP_TEXT, b"still fine")]


WRONG_TYPES = [
    pytest.param(42, id="int"),
    pytest.param(None, id="None"),
    pytest.param(1.5, id="float"),
    pytest.param([104, 105], id="list-of-ints"),
    pytest.param({"a": 1}, id="dict"),
    pytest.param(object(), id="object"),
]


@pytest.mark.parametrize("value", WRONG_TYPES)
async def test_wrong_types_raise_type_error_and_send_nothing(
    raw_server: StartServer, value: object
) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        with pytest.raises(TypeError):
            await ws.send(value)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await ws.send_nonfinal_frame(value)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await ws.send_final_frame(value)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await ws.output_stream.send_all(value)  # type: ignore[arg-type]
        await ws.send(b"only this")
    await log.wait()
    assert data(log) == [(True, OP_BINARY, b"only this")]


# -- fragmented sends ------------------------------------------------------------------------


async def test_fragmented_send_on_the_wire_with_a_waiting_sender_and_a_ping(
    raw_server: StartServer,
) -> None:
    """Frame opcodes and FIN bits are right; another task's send() waits for the final
    frame; a ping goes out in the middle of the fragmented message."""
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws, trio.open_nursery() as nursery:
        other_sent = trio.Event()

        async def other_sender() -> None:
            await ws.send(b"other task")
            other_sent.set()

        assert await ws.send_nonfinal_frame(b"first,") == 6
        nursery.start_soon(other_sender)
        nursery.start_soon(ws.ping, b"ping in between")
        await trio.testing.wait_all_tasks_blocked()
        assert not other_sent.is_set()
        second: Any = bytearray(b"second,")
        assert await ws.send_nonfinal_frame(second) == 7
        await trio.testing.wait_all_tasks_blocked()
        assert not other_sent.is_set()
        assert await ws.send_final_frame(b"third") == 5
        with trio.fail_after(5):
            await other_sent.wait()
        # A text message, sent as str fragments: len() counts UTF-8 bytes.
        assert await ws.send_nonfinal_frame("hé") == 3
        assert await ws.send_final_frame("") == 0
        # send_final_frame alone is a whole one-frame message.
        assert await ws.send_final_frame(b"alone") == 5
    await log.wait()
    assert data(log) == [
        (False, OP_BINARY, b"first,"),
        (False, OP_CONTINUATION, b"second,"),
        (True, OP_CONTINUATION, b"third"),
        (True, OP_BINARY, b"other task"),
        (False, OP_TEXT, "hé".encode()),
        (True, OP_CONTINUATION, b""),
        (True, OP_BINARY, b"alone"),
    ]
    # The ping went out while the fragmented message was in progress.
    assert [f.opcode for f in log.frames[:5]] == [
        OP_BINARY,
        OP_PING,
        OP_CONTINUATION,
        OP_CONTINUATION,
        OP_BINARY,
    ]
    assert log.frames[1] == ClientFrame(True, OP_PING, b"ping in between")


async def test_send_in_the_middle_of_own_fragmented_message_raises_runtime_error(
    echo_url: str,
) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        await ws.send_nonfinal_frame(b"part one, ")
        with pytest.raises(RuntimeError):
            await ws.send(b"a whole message")
        with pytest.raises(RuntimeError):
            await ws.output_stream.send_all(b"a whole message")
        await ws.send_final_frame(b"part two")
        assert await ws.receive() == MessageReceived(BINARY, b"part one, part two")
        await ws.send(b"whole")  # fine again once the message is finished
        assert await ws.receive() == MessageReceived(BINARY, b"whole")


async def test_utf8_validation_spans_frames(raw_server: StartServer) -> None:
    """Bytes sent as UTF8 may split a character across frames, but invalid UTF-8 is refused
    (ValueError, frame not sent) even when only the next frame reveals it."""
    log = ServerLog()
    url = await raw_server(recording_server(log))
    euro = "€".encode()
    async with trio_mws.open_message_websocket(url) as ws:
        ws.control.message_type = UTF8
        assert await ws.send_nonfinal_frame(euro[:2]) == 2
        assert await ws.send_final_frame(euro[2:]) == 1  # "€" split across two frames
        assert await ws.send_nonfinal_frame(b"ok " + euro[:1]) == 4
        with pytest.raises(ValueError):
            await ws.send_nonfinal_frame(b"x")  # the character cannot continue with "x"
        with pytest.raises(ValueError):
            await ws.send_final_frame(b"")  # the message cannot end in a character
        assert await ws.send_final_frame(euro[1:]) == 2  # the right continuation is accepted
        with pytest.raises(ValueError):
            await ws.send_nonfinal_frame(b"\xff")  # refused in a first frame too
        await ws.send("after")
    await log.wait()
    assert data(log) == [
        (False, OP_TEXT, euro[:2]),
        (True, OP_CONTINUATION, euro[2:]),
        (False, OP_TEXT, b"ok " + euro[:1]),
        (True, OP_CONTINUATION, euro[1:]),
        (True, OP_TEXT, b"after"),
    ]


async def test_fragmented_message_reassembled_by_echo_servers(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        for piece in ("un ", "deux ", "trois ✓"):
            await ws.send_nonfinal_frame(piece)
        await ws.send_final_frame("")
        assert (await ws.receive()) == MessageReceived(UTF8, "un deux trois ✓".encode())


# -- the output stream -----------------------------------------------------------------------


async def test_output_stream_sends_one_message_of_control_message_type(
    raw_server: StartServer,
) -> None:
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        stream = ws.output_stream
        assert isinstance(stream, trio.abc.SendStream)
        await stream.send_all(b"binary by default")
        await stream.send_all(bytearray(b"a bytearray"))
        ws.control.message_type = UTF8
        await stream.send_all("text ✓".encode())
        await stream.wait_send_all_might_not_block()
        await stream.send_all(b"")
    await log.wait()
    assert data(log) == [
        (True, OP_BINARY, b"binary by default"),
        (True, OP_BINARY, b"a bytearray"),
        (True, OP_TEXT, "text ✓".encode()),
        (True, OP_TEXT, b""),
    ]


# -- concurrency -----------------------------------------------------------------------------


def concurrent_payload(sender: int, seq: int) -> str | bytes:
    """Message ``seq`` of task ``sender``: text or binary, 10 bytes to ~70 KB."""
    head = f"{sender}:{seq}:"
    size = (seq * 7919 + sender * 104729) % 6000
    if seq % 25 == 0:
        size = 70_000  # above the writer's high-water mark: senders wait for space
    if sender % 2:
        return head + "é" * (size // 2)
    return head.encode() + bytes([sender * 16 + seq % 16]) * size


SENDERS, PER_SENDER = 10, 100


async def send_concurrently(ws: trio_mws.MessageWebSocket) -> None:
    """SENDERS tasks send PER_SENDER messages each; task 0 sends its messages in 3 frames,
    yielding between them so that the other tasks try to slip in."""

    async def send_all(sender: int) -> None:
        for seq in range(PER_SENDER):
            payload = concurrent_payload(sender, seq)
            if sender == 0:
                third = len(payload) // 3
                await ws.send_nonfinal_frame(payload[:third])
                await trio.lowlevel.checkpoint()
                await ws.send_nonfinal_frame(payload[third : 2 * third])
                await trio.lowlevel.checkpoint()
                await ws.send_final_frame(payload[2 * third :])
            else:
                await ws.send(payload)
            if seq % 10 == 0:
                await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        for sender in range(SENDERS):
            nursery.start_soon(send_all, sender)


def by_sender(messages: list[str | bytes]) -> dict[int, list[str | bytes]]:
    """Group messages by the sender number at their start."""
    grouped: dict[int, list[str | bytes]] = {sender: [] for sender in range(SENDERS)}
    for message in messages:
        head = message.split(":", 1)[0] if isinstance(message, str) else message.split(b":")[0]
        grouped[int(head)].append(message)
    return grouped


def check_all_sent(grouped: dict[int, list[str | bytes]]) -> None:
    for sender in range(SENDERS):
        expected = [concurrent_payload(sender, seq) for seq in range(PER_SENDER)]
        assert grouped[sender] == expected, f"messages of sender {sender} differ"


async def test_concurrent_senders_frames_never_interleave_on_the_wire(
    raw_server: StartServer,
) -> None:
    """The server checks the frame sequence itself: a new message never starts while a
    fragmented one is unfinished, and every message arrives whole and in its task's order."""
    log = ServerLog()
    url = await raw_server(recording_server(log))
    async with trio_mws.open_message_websocket(url) as ws:
        with trio.fail_after(20):
            await send_concurrently(ws)
    await log.wait()
    messages: list[str | bytes] = []
    parts: list[bytes] = []
    opcode = None
    for index, received in enumerate(log.data_frames()):
        if received.opcode == OP_CONTINUATION:
            assert opcode is not None, f"frame {index}: continuation outside a message"
        else:
            assert opcode is None, (
                f"frame {index}: a new message (opcode {received.opcode}) started inside an "
                f"unfinished fragmented message that began with {parts[0][:12]!r}"
            )
            opcode = received.opcode
        parts.append(received.payload)
        if received.fin:
            data = b"".join(parts)
            messages.append(data.decode() if opcode == OP_TEXT else data)
            parts, opcode = [], None
    assert len(messages) == SENDERS * PER_SENDER
    check_all_sent(by_sender(messages))


async def test_concurrent_senders_to_an_echo_server(echo_url: str) -> None:
    """The same traffic through an echo server, with a receiver running concurrently: all
    1000 messages come back intact, each task's in order."""
    received: list[str | bytes] = []
    async with trio_mws.open_message_websocket(echo_url) as ws:

        async def receive_all() -> None:
            for _ in range(SENDERS * PER_SENDER):
                event = await ws.receive()
                received.append(event.text if event.message_type is UTF8 else event.data)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_all)
                await send_concurrently(ws)
        assert ws.information.messages_sent == SENDERS * PER_SENDER
    check_all_sent(by_sender(received))


# -- cancelling a blocked send ---------------------------------------------------------------


async def test_cancelling_a_send_blocked_by_back_pressure_leaves_only_whole_frames(
    raw_server: StartServer, autojump_clock: trio.abc.Clock
) -> None:
    """The server does not read, so sends eventually block; cancelling the blocked send must
    not leave part of a frame on the wire: once the server reads, it finds exactly the frames
    of the sends that returned, then the messages sent afterwards."""
    size = 100_000
    log = ServerLog()
    reading = trio.Event()

    def message(i: int) -> bytes:
        return struct.pack("!I", i) + bytes([i % 251]) * (size - 4)

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await reading.wait()
        try:
            while True:
                received = await read_frame(peer)
                log.frames.append(received)
                if received.opcode == OP_CLOSE:
                    break
            await peer.send(b"\x88\x02\x03\xe8")  # close 1000
            await peer.stream.aclose()
        finally:
            log.done.set()

    url = await raw_server(handler)
    sent = 0
    async with trio_mws.open_message_websocket(
        url, ping_interval=None, outbound_buffer_size_in_bytes=32 * 1024
    ) as ws:
        with trio.move_on_after(30) as scope:
            while True:
                await ws.send(message(sent))
                sent += 1
        assert scope.cancelled_caught, "sending never blocked"
        assert ws.state is trio_mws.WebSocketState.OPEN
        reading.set()
        await ws.send(b"after the cancelled send")
        await ws.send("and one more")
    await log.wait()
    frames = log.data_frames()
    assert len(frames) == sent + 2
    for i, received in enumerate(frames[:sent]):
        assert (received.fin, received.opcode) == (True, OP_BINARY)
        assert received.payload == message(i), f"frame {i} damaged"
    assert [(f.fin, f.opcode, f.payload) for f in frames[sent:]] == [
        (True, OP_BINARY, b"after the cancelled send"),
        (True, OP_TEXT, b"and one more"),
    ]
    assert log.frames[-1].payload[:2] == b"\x03\xe8"


async def test_a_send_blocked_by_back_pressure_fails_when_the_connection_is_reset(
    raw_server: StartServer,
) -> None:
    go = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await go.wait()  # reads nothing, then resets
        await reset_connection(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, outbound_buffer_size_in_bytes=16384) as ws:
        failure: list[BaseException] = []

        async def sender() -> None:
            try:
                while True:
                    await ws.send(b"x" * 100_000)
            except ConnectionClosed as exc:
                failure.append(exc)

        with trio.fail_after(PROMPTLY):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                await trio.testing.wait_all_tasks_blocked()  # the sender is blocked
                go.set()
        assert len(failure) == 1
        assert isinstance(failure[0], ConnectionClosed)
        assert failure[0].status is trio_mws.WebErrorStatus.CONNECTION_RESET
        assert failure[0].code == 1006


# -- after the connection closed -------------------------------------------------------------


async def test_every_send_after_close_raises_connection_closed(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        await ws.close()
        with pytest.raises(ConnectionClosed):
            await ws.send("text")
        with pytest.raises(ConnectionClosed):
            await ws.send(b"binary")
        with pytest.raises(ConnectionClosed):
            await ws.send_nonfinal_frame(b"frame")
        with pytest.raises(ConnectionClosed):
            await ws.send_final_frame(b"frame")
        with pytest.raises(ConnectionClosed):
            await ws.output_stream.send_all(b"stream")
        with pytest.raises(ConnectionClosed):
            await ws.ping()


async def test_a_message_of_more_than_1024_pieces_reaches_the_server(
    raw_server: StartServer,
) -> None:
    # 70 MiB masked in 64 KiB pieces: more buffers than one writev takes (IOV_MAX, 1024).
    message = bytes(70 * 1024 * 1024)
    received: list[int] = []

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        received.append(len((await peer.read_client_frame()).payload))
        await answer_close(peer, ServerLog())

    url = await raw_server(handler)
    with trio.fail_after(60):
        async with trio_mws.open_message_websocket(url, max_message_size=None) as ws:
            await ws.send(message)
            assert ws.state is trio_mws.WebSocketState.OPEN
    assert received == [len(message)]


async def test_a_flood_of_pings_in_one_read_is_answered(raw_server: StartServer) -> None:
    count = 3000
    pongs: list[bytes] = []

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(b"".join(frame(OP_PING, b"%d" % n) for n in range(count)))
        while len(pongs) < count:
            pong = await peer.read_client_frame()
            assert pong.opcode == OP_PONG
            pongs.append(pong.payload)
        await peer.send(close_frame(1000))
        await answer_close(peer, ServerLog())

    url = await raw_server(handler)
    with trio.fail_after(30):
        async with trio_mws.open_message_websocket(url) as ws:
            async for _ in ws:
                pass  # pragma: no cover - no message
    assert pongs == [b"%d" % n for n in range(count)]
