"""A stand-in for the sans-I/O engine, over wsproto, with the engine's interface.

Issue 7 replaces wsproto with an engine of our own (``trio_mws.protocol``). Until it lands,
this module offers the same interface (``ENGINE_API.md``) over wsproto, so the connection is
written once, against the engine's interface. It goes away with wsproto.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits

from .compression import PARTIAL_INFLATE_LIMIT, ClientPerMessageDeflate, feed_size
from .enums import SocketMessageType, WebSocketState
from .frames import OP_BINARY, OP_CONTINUATION, OP_TEXT, encode_frame
from .limits import BAD_GATEWAY, EngineGuard

__all__ = [
    "ClientEngine",
    "CloseReceived",
    "DataReceived",
    "Event",
    "PingReceived",
    "PongReceived",
    "ProtocolError",
]


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Message data: FULL mode one whole message, PARTIAL mode a piece (``fin`` on the last)."""

    message_type: SocketMessageType
    data: bytes
    fin: bool


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A ping; its pong is already queued."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """A pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The server's close frame (code 1005 when empty); the echo is already queued."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The engine failed the connection; the close frame with ``code`` is already queued."""

    code: int
    reason: str
    message: str


Event = DataReceived | PingReceived | PongReceived | CloseReceived | ProtocolError


class _ClientSide:
    """What wsproto's extension hooks ask of the protocol object: which side we are."""

    client = True


_CLIENT_SIDE = _ClientSide()


def _split(data: bytes, limit: int, text: bool) -> list[bytes]:
    """Split ``data`` into pieces of at most ``limit`` bytes, on UTF-8 boundaries for text."""
    pieces = []
    start = 0
    while len(data) - start > limit:
        end = start + limit
        if text:
            while end > start and (data[end] & 0xC0) == 0x80:
                end -= 1
            if end == start:  # limit smaller than one character: send the character whole
                end = start + 1
                while end < len(data) and (data[end] & 0xC0) == 0x80:
                    end += 1
        pieces.append(data[start:end])
        start = end
    pieces.append(data[start:])
    return pieces


class ClientEngine:
    """The client side of one WebSocket connection, without I/O (see ``ENGINE_API.md``)."""

    def __init__(
        self,
        *,
        max_message_size: int | None,
        partial: bool,
        deflate: ClientPerMessageDeflate | None = None,
        piece_limit: int = 64 * 1024,
    ) -> None:
        self._guard = EngineGuard(None if partial else max_message_size)
        extensions: list[Extension] = [deflate] if deflate is not None else []
        extensions.append(self._guard)
        self._wsproto = Connection(ConnectionType.CLIENT, extensions)
        self._deflate = deflate
        self._partial = partial
        self._limit = max_message_size
        self._piece_limit = piece_limit
        #: With compression, the largest slice of received bytes to feed at once, so that
        #: one slice never inflates beyond the piece limit (see compression.py).
        self.feed_size: int | None = None
        if deflate is not None:
            inflate_limit = max_message_size
            if partial:
                inflate_limit = min(inflate_limit or PARTIAL_INFLATE_LIMIT, PARTIAL_INFLATE_LIMIT)
            self.feed_size = feed_size(inflate_limit)
        #: OPEN, CLOSING (a close sent or received), CLOSED (handshake done, failed, or EOF).
        self.state = WebSocketState.OPEN
        #: Whether a close frame was queued.
        self.close_sent = False
        #: The server's close frame, once received.
        self.close_received: CloseReceived | None = None
        #: Payload bytes sent and received (sent: after compression).
        self.bytes_sent = 0
        self.bytes_received = 0
        self._events: list[Event] = []
        self._output: list[bytes] = []
        self._parts: list[bytes] = []
        self._size = 0
        self._sending = False  # a fragmented message is being sent

    # -- bytes in, events out ----------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the server."""
        if self.state is WebSocketState.CLOSED or self.close_received is not None:
            return
        self._wsproto.receive_data(bytes(data))
        self._process()

    def receive_eof(self) -> None:
        """The transport ended (or was dropped): the connection is CLOSED."""
        self.state = WebSocketState.CLOSED

    def events_received(self) -> list[Event]:
        """The events so far (drained)."""
        events, self._events = self._events, []
        return events

    def _process(self) -> bool:
        """Turn wsproto's events into ours; True once the connection ended."""
        pieces: list[bytes] = []  # PARTIAL: the pieces of one message from this call
        for event in self._wsproto.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if isinstance(event, TextMessage):
                    kind, data = SocketMessageType.UTF8, event.data.encode()
                else:
                    kind, data = SocketMessageType.BINARY, bytes(event.data)
                self._on_data(kind, data, event.message_finished, pieces)
                if self.state is WebSocketState.CLOSED:
                    return True
                continue
            self._flush_pieces(pieces)
            if isinstance(event, Ping):
                if self._wsproto.state is ConnectionState.OPEN:
                    self._output.append(self._wsproto.send(event.response()))
                self._events.append(PingReceived(bytes(event.payload)))
            elif isinstance(event, Pong):
                self._events.append(PongReceived(bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                self._on_close(event)
                return True
        self._flush_pieces(pieces)
        return False

    def _on_data(
        self, kind: SocketMessageType, data: bytes, fin: bool, pieces: list[bytes]
    ) -> None:
        self.bytes_received += len(data)
        if self._partial:
            # Coalesce what this call brought for one message, up to the piece limit.
            pieces.append(data)
            if fin:
                self._flush_pieces(pieces, kind, fin=True)
            else:
                self._pending_kind = kind
            return
        if fin and not self._parts:  # a whole message in one frame
            self._events.append(DataReceived(kind, data, True))
            return
        self._size += len(data)
        limit = self._limit
        if limit is not None and self._size > limit:
            self._protocol_error(
                1009,
                "message too big",
                f"message of over {self._size} bytes exceeds max_message_size {limit}",
            )
            return
        self._parts.append(data)
        if fin:
            data = b"".join(self._parts)
            self._parts = []
            self._size = 0
            self._events.append(DataReceived(kind, data, True))

    _pending_kind = SocketMessageType.BINARY

    def _flush_pieces(
        self, pieces: list[bytes], kind: SocketMessageType | None = None, *, fin: bool = False
    ) -> None:
        if not pieces:
            return
        kind = self._pending_kind if kind is None else kind
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        split = _split(data, self._piece_limit, kind is SocketMessageType.UTF8)
        for piece in split[:-1]:
            self._events.append(DataReceived(kind, piece, False))
        if split[-1] or fin:
            self._events.append(DataReceived(kind, split[-1], fin))

    def _on_close(self, event: CloseConnection) -> None:
        code = int(event.code)
        reason = event.reason or ""
        if self._wsproto.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            # wsproto found a protocol error: it reports it as a close it wants to send.
            self._protocol_error(code, reason, f"protocol error from the server: {reason}")
            return
        if code == CloseReason.INTERNAL_ERROR and self._guard.saw_bad_gateway:
            code = BAD_GATEWAY
        self.close_received = CloseReceived(code, reason)
        self._events.append(self.close_received)
        if self._wsproto.state is ConnectionState.REMOTE_CLOSING:
            echo = CloseConnection(code, event.reason).response()
            self._output.append(self._wsproto.send(echo))
            self.close_sent = True
        self.state = WebSocketState.CLOSED

    def _protocol_error(self, code: int, reason: str, message: str) -> None:
        self._parts = []
        self._size = 0
        self._queue_close(code, reason)
        self._events.append(ProtocolError(code, reason, message))
        self.state = WebSocketState.CLOSED

    # -- calls in, bytes out -----------------------------------------------------------------

    def send_data(self, message_type: SocketMessageType, payload: bytes, *, fin: bool) -> int:
        """Queue a data frame (continuation after a non-final one); returns the payload length."""
        if self.state is not WebSocketState.OPEN:
            raise RuntimeError(f"cannot send data in state {self.state.name}")
        if self._sending:
            opcode = OP_CONTINUATION
        else:
            opcode = OP_TEXT if message_type is SocketMessageType.UTF8 else OP_BINARY
        self._sending = not fin
        rsv1 = False
        if self._deflate is not None:
            rsv, compressed = self._deflate.frame_outbound(
                _CLIENT_SIDE,  # type: ignore[arg-type]
                Opcode(opcode),
                RsvBits(False, False, False),
                payload,
                fin,
            )
            payload, rsv1 = bytes(compressed), rsv.rsv1
        self._output.extend(encode_frame(opcode, payload, fin, rsv1))
        self.bytes_sent += len(payload)
        return len(payload)

    def send_ping(self, payload: bytes) -> None:
        """Queue a ping."""
        if self._wsproto.state is ConnectionState.OPEN:
            self._output.append(self._wsproto.send(Ping(payload)))

    def send_pong(self, payload: bytes) -> None:
        """Queue a pong."""
        if self._wsproto.state is ConnectionState.OPEN:
            self._output.append(self._wsproto.send(Pong(payload)))

    def send_close(self, code: int | None = None, reason: str = "") -> None:
        """Queue a close frame (empty when ``code`` is None); the state becomes CLOSING."""
        if self._queue_close(code, reason):
            self.state = WebSocketState.CLOSING

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection locally: a close frame with ``code``; CLOSING."""
        self.send_close(code, reason)

    def _queue_close(self, code: int | None, reason: str) -> bool:
        if self.close_sent or self._wsproto.state is not ConnectionState.OPEN:
            return False
        self.close_sent = True
        # wsproto sends an empty close frame only for this exact enum member.
        close_code = CloseReason.NO_STATUS_RCVD if code is None else code
        self._output.append(self._wsproto.send(CloseConnection(close_code, reason or None)))
        return True

    def data_to_send(self) -> list[bytes]:
        """The queued output buffers, in order (drained)."""
        output, self._output = self._output, []
        return output
