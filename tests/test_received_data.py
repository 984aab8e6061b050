"""What the client makes of received data, end to end over real sockets: the frame-count
bound of a reassembled message, the close frame and error of a message over the limit, the
inflated size of a compressed message, a data frame inside a compressed fragmented message,
the byte counters, and how PARTIAL_MESSAGE mode cuts data into pieces.

The engine's own unit tests (``tests/protocol/``) cover the same rules without sockets; these
show what an application and the server see.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

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
)

from .mws_helpers import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_TEXT, PROMPTLY, StartServer
from .rawserver import Handler, RawPeer, frame

FULL = MessageWebSocketReceiveMode.FULL_MESSAGE
PARTIAL = MessageWebSocketReceiveMode.PARTIAL_MESSAGE
UTF8 = SocketMessageType.UTF8
RSV1 = 4  # ``rsv`` argument of ``frame``: the first byte's bit 0x40
TAIL = b"\x00\x00\xff\xff"
MiB = 1024 * 1024
DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate\r\n"


def compress(data: bytes) -> bytes:
    """One message's compressed payload (sync flush, tail stripped: RFC 7692 7.2.1)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[: -len(TAIL)]


@dataclass
class Verdict:
    """The client's close frame as the scripted server saw it."""

    close_payload: bytes | None = None
    done: trio.Event = field(default_factory=trio.Event)

    @property
    def code(self) -> int | None:
        payload = self.close_payload
        return None if not payload else int.from_bytes(payload[:2], "big")

    @property
    def reason(self) -> bytes | None:
        return None if self.close_payload is None else self.close_payload[2:]


def sending_server(verdict: Verdict, wire: bytes, *, extensions: str = "") -> Handler:
    """Accept (with ``extensions`` header lines), send a text message, then ``wire``; record
    the client's close frame and wait for its TCP close."""

    async def handler(peer: RawPeer) -> None:
        try:
            await peer.accept(extensions)
            await peer.send(frame(OP_TEXT, b"before") + wire)
            with trio.move_on_after(PROMPTLY):
                while True:
                    _fin, opcode, payload = await peer.read_frame()
                    if opcode == OP_CLOSE:
                        verdict.close_payload = payload
                        break
                await peer.wait_eof()
        except EOFError:
            pass
        finally:
            verdict.done.set()

    return handler


async def receive_until_failure(
    url: str, **control_fields: object
) -> tuple[list[MessageReceived], ConnectionClosed]:
    received: list[MessageReceived] = []
    with trio.fail_after(PROMPTLY):
        async with trio_mws.open_message_websocket(url, **control_fields) as ws:  # type: ignore[arg-type]
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    received.append(await ws.receive())
    return received, info.value


# -- defect 1: a message of countless empty frames ---------------------------------------------


async def test_a_message_of_countless_empty_frames_is_too_big(raw_server: StartServer) -> None:
    """FULL_MESSAGE: a text message of one byte followed by 200,000 empty continuation frames
    (400 KB on the wire) is refused once its frame count passes the bound (1009), instead of
    growing the reassembly without limit and keeping the connection open."""
    verdict = Verdict()
    empty = frame(OP_CONTINUATION, b"", fin=False)
    wire = frame(OP_TEXT, b"a", fin=False) + empty * 200_000 + frame(OP_CONTINUATION, b"")
    url = await raw_server(sending_server(verdict, wire))
    received, error = await receive_until_failure(url)
    assert received == [MessageReceived(UTF8, b"before")]
    assert type(error) is MessageTooBig
    assert error.code == 1009
    with trio.fail_after(PROMPTLY):
        await verdict.done.wait()
    assert verdict.code == 1009


# -- defect 10: too big is not a protocol error --------------------------------------------------


@pytest.mark.parametrize("mode", ["announced", "fragmented"])
async def test_a_message_over_max_message_size_closes_with_1009_message_too_big(
    raw_server: StartServer, mode: str
) -> None:
    """The close frame says "message too big" (not "error in extension") and the exception
    does not blame the server for a protocol error: it made none."""
    verdict = Verdict()
    if mode == "announced":
        wire = frame(OP_BINARY, b"x" * 2000)
    else:
        wire = frame(OP_BINARY, b"x" * 600, fin=False) + frame(OP_CONTINUATION, b"x" * 600)
    url = await raw_server(sending_server(verdict, wire))
    received, error = await receive_until_failure(url, max_message_size=1000)
    assert received == [MessageReceived(UTF8, b"before")]
    assert type(error) is MessageTooBig
    assert (error.code, error.reason) == (1009, "message too big")
    assert error.status is WebErrorStatus.CONNECTION_ABORTED
    assert "protocol error" not in str(error)
    assert "max_message_size" in str(error)
    with trio.fail_after(PROMPTLY):
        await verdict.done.wait()
    assert verdict.code == 1009
    assert verdict.reason == b"message too big"


# -- defect 12: a small compressed frame that inflates beyond the limit --------------------------


async def test_a_compressed_frame_inflating_beyond_the_limit_is_too_big(
    raw_server: StartServer,
) -> None:
    """max_message_size=1000: one frame of a few dozen compressed bytes inflating to 20,000
    bytes is refused (MessageTooBig, close 1009), not delivered whole."""
    verdict = Verdict()
    payload = compress(b"z" * 20_000)
    assert len(payload) < 100
    wire = frame(OP_BINARY, payload, rsv=RSV1)
    url = await raw_server(sending_server(verdict, wire, extensions=DEFLATE))
    received, error = await receive_until_failure(url, max_message_size=1000, compression=True)
    assert received == [MessageReceived(UTF8, b"before")]
    assert type(error) is MessageTooBig
    assert error.code == 1009
    with trio.fail_after(PROMPTLY):
        await verdict.done.wait()
    assert verdict.code == 1009


# -- defect 13: a data frame inside a compressed fragmented message ------------------------------


@pytest.mark.parametrize("mode", [FULL, PARTIAL], ids=["full", "partial"])
@pytest.mark.parametrize("intruder", ["compressed", "garbage"])
async def test_a_data_frame_inside_a_compressed_fragmented_message_is_1002(
    raw_server: StartServer, mode: MessageWebSocketReceiveMode, intruder: str
) -> None:
    """RFC 6455 5.4: a new data frame before the fragmented message ends is a protocol error
    (1002), whatever its payload: it is refused before anything is inflated."""
    verdict = Verdict()
    started = compress(b"the first half of a message, ")
    payload = compress(b"new") if intruder == "compressed" else b"\xff\xff\xff\xff"
    wire = frame(OP_TEXT, started, fin=False, rsv=RSV1) + frame(OP_TEXT, payload, rsv=RSV1)
    url = await raw_server(sending_server(verdict, wire, extensions=DEFLATE))
    received, error = await receive_until_failure(url, compression=True, receive_mode=mode)
    assert received[0] == MessageReceived(UTF8, b"before")
    assert all(not event.is_message_complete for event in received[1:])
    assert error.code == 1002
    assert error.status is WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE
    with trio.fail_after(PROMPTLY):
        await verdict.done.wait()
    assert verdict.code == 1002


# -- defect 7: byte counters count what the application sees ------------------------------------


async def test_byte_counters_count_uncompressed_payload(websockets_url: str) -> None:
    """With permessage-deflate, bytes_sent and bytes_received both count message payload as
    the application passes and gets it (uncompressed)."""
    message = "compressible " * 1000
    async with trio_mws.open_message_websocket(websockets_url, compression=True) as ws:
        await ws.send(message)
        assert (await ws.receive()).text == message
        info = ws.information
        assert info.bytes_sent == len(message)
        assert info.bytes_received == len(message)
        assert info.messages_sent == info.messages_received == 1


# -- defect 11: PARTIAL pieces are what arrived, not one per frame --------------------------------


async def test_partial_pieces_coalesce_what_one_read_brings(raw_server: StartServer) -> None:
    """A 4 MiB message sent as 1,024 frames of 4 KiB in one burst: PARTIAL_MESSAGE delivers
    what each read brings for the message as one piece (up to 1 MiB), not one piece per
    frame; the data is complete and in order."""
    piece = bytes(range(256)) * 16  # 4 KiB
    frames = [frame(OP_CONTINUATION if i else OP_BINARY, piece, fin=i == 1023) for i in range(1024)]
    sent = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(b"".join(frames))
        sent.set()
        await peer.read_close()
        await peer.send(frame(OP_CLOSE, b"\x03\xe8"))

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(
        url, receive_mode=PARTIAL, max_message_size=None, message_queue_size=2048
    ) as ws:
        with trio.fail_after(PROMPTLY):
            await sent.wait()  # the whole burst is on its way before the first read
        events: list[MessageReceived] = []
        with trio.fail_after(PROMPTLY):
            while not events or not events[-1].is_message_complete:
                events.append(await ws.receive())
    assert b"".join(event.data for event in events) == piece * 1024
    assert all(len(event.data) <= MiB for event in events)
    assert len(events) < 128, f"{len(events)} pieces for 4 MiB"
