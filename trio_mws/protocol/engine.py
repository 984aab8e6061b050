"""The client side of the WebSocket protocol, sans I/O: bytes in -> events out, calls in ->
bytes out.

The connection feeds received bytes to :meth:`ClientEngine.receive_data`, takes the events
from :meth:`ClientEngine.events_received`, and writes what :meth:`ClientEngine.data_to_send`
returns. The engine never blocks, never raises for bad input from the server (it reports a
:class:`ProtocolError` event and queues the close frame), and bounds its memory:

- a data frame's payload is never buffered whole: it is consumed as it arrives (PARTIAL mode
  emits pieces; FULL mode appends to the message, whose announced size is checked at every
  frame header);
- the only bytes kept between calls are an incomplete frame header or control frame (at most
  139 bytes), a message being reassembled (FULL, at most ``max_message_size`` bytes and
  ``max_fragments`` frames), a piece being coalesced (PARTIAL, under ``piece_limit`` bytes),
  and input held back for the next batch (below);
- one batch of events holds about :data:`EVENT_BUDGET` bytes plus one message or piece; the
  input beyond is held back until the batch is taken (decompression can turn 64 KiB of input
  into 64 MiB of output, so the input size alone bounds nothing).
"""

from __future__ import annotations

import zlib

from ..enums import SocketMessageType, WebSocketState
from .deflate import SYNC_TAIL, Compressor, Decompressor, DeflateParameters
from .events import (
    CloseReceived,
    DataReceived,
    Event,
    PingReceived,
    PongReceived,
    ProtocolError,
    _set_data,
    _set_fin,
    _set_message_type,
)
from .frames import (
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    parse_extended_header,
    serialize_frame,
)
from .utf8 import Utf8Validator, character_boundary

__all__ = ["DEFAULT_MAX_FRAGMENTS", "EVENT_BUDGET", "ClientEngine", "valid_close_code"]

#: FULL mode: default bound on the frames of one message. A message of many tiny or empty
#: frames costs CPU per frame while adding no bytes; 2**17 frames is twice Autobahn's worst
#: legitimate case (4 MiB sent in 64-byte fragments) and about a tenth of a second of parsing.
DEFAULT_MAX_FRAGMENTS = 2**17
#: Bytes of data after which a batch of events stops growing: the rest of the input waits
#: in the engine until :meth:`ClientEngine.events_received` hands the batch out.
EVENT_BUDGET = 1024 * 1024

_OPEN = WebSocketState.OPEN
_CLOSING = WebSocketState.CLOSING
_CLOSED = WebSocketState.CLOSED
_TEXT = SocketMessageType.UTF8
_BINARY = SocketMessageType.BINARY
# The first byte of an unfragmented, uncompressed text/binary frame: FIN plus the opcode.
_WHOLE_TEXT = 0x80 | OP_TEXT
_WHOLE_BINARY = 0x80 | OP_BINARY
_COMPRESSED_TEXT = 0xC0 | OP_TEXT  # FIN, RSV1 and the opcode
_COMPRESSED_BINARY = 0xC0 | OP_BINARY
_COMPRESSED_FIRST_BYTES = (_COMPRESSED_TEXT, _COMPRESSED_BINARY)
_new_event = object.__new__
# PARTIAL mode inflates at least this many bytes per zlib call (split into pieces after).
_MIN_INFLATE = 4096
_NO_LIMIT = 2**64

_PROTOCOL_ERROR = 1002
_INVALID_DATA = 1007
_TOO_BIG = 1009
_TOO_BIG_REASON = "message too big"

# Codes that may appear in a close frame (RFC 6455 7.4, and the IANA registry's 1012-1014).
_REGISTERED_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015)))


def valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame: 1000-1003, 1007-1014 or 3000-4999."""
    return code in _REGISTERED_CODES or 3000 <= code <= 4999


class _Failure(Exception):
    """Internal: the server broke the protocol; the engine fails the connection."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def _protocol_error(what: str) -> _Failure:
    return _Failure(_PROTOCOL_ERROR, "protocol error", f"protocol error from the server: {what}")


def _invalid_deflate() -> _Failure:
    return _Failure(
        _INVALID_DATA, "invalid compressed data", "the server sent invalid compressed data"
    )


def _invalid_utf8() -> _Failure:
    return _Failure(
        _INVALID_DATA, "invalid UTF-8", "the server sent a text message that is not valid UTF-8"
    )


class ClientEngine:
    """The protocol state and parser of one client connection (see the module docstring).

    ``max_message_size`` (bytes or None for no limit): FULL mode, a longer message fails the
    connection with 1009; PARTIAL mode, pieces hold at most this many bytes too.
    ``partial`` (bool): PARTIAL mode (pieces as data arrives) instead of FULL (whole messages).
    ``deflate``: the negotiated permessage-deflate parameters, or None (default).
    ``piece_limit`` (bytes, default 64 KiB): PARTIAL mode's largest piece.
    ``max_fragments`` (frames, default :data:`DEFAULT_MAX_FRAGMENTS`): FULL mode's bound on
    the frames of one message; more fails the connection with 1009, as too big a message.
    """

    __slots__ = (
        "_batch_bytes",
        "_buffer",
        "_compressor",
        "_decompressor",
        "_done",
        "_events",
        "_fast_limit",
        "_frame_fin",
        "_frame_left",
        "_held",
        "_inflate_pending",
        "_max_fragments",
        "_max_size",
        "_message",
        "_message_compressed",
        "_message_frames",
        "_message_opcode",
        "_message_size",
        "_message_type",
        "_output",
        "_partial",
        "_parts",
        "_parts_size",
        "_piece_limit",
        "_sending_message",
        "_validator",
        "bytes_received",
        "bytes_sent",
        "close_received",
        "close_sent",
        "state",
    )

    def __init__(
        self,
        *,
        max_message_size: int | None,
        partial: bool,
        deflate: DeflateParameters | None = None,
        piece_limit: int = 64 * 1024,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        if max_message_size is not None and max_message_size < 1:
            raise ValueError("max_message_size must be at least 1 byte, or None")
        if piece_limit < 1:
            raise ValueError("piece_limit must be at least 1 byte")
        if max_fragments < 1:
            raise ValueError("max_fragments must be at least 1")
        #: The connection state (:class:`WebSocketState`): OPEN, then CLOSING once a close
        #: frame was sent, CLOSED once the close handshake is done, failed, or at EOF.
        self.state = _OPEN
        #: Whether we queued a close frame (bool).
        self.close_sent = False
        #: The server's close frame, once received (:class:`CloseReceived` or None).
        self.close_received: CloseReceived | None = None
        #: Data payload bytes sent, uncompressed, as the application passed them (int).
        self.bytes_sent = 0
        #: Data payload bytes received, uncompressed, as delivered in events (int).
        self.bytes_received = 0
        self._max_size = max_message_size
        self._partial = partial
        if partial and max_message_size is not None:
            piece_limit = min(piece_limit, max_message_size)
        self._piece_limit = piece_limit
        # The longest frame the fast path may deliver whole.
        limit = _NO_LIMIT if max_message_size is None else max_message_size
        self._fast_limit = min(limit, piece_limit) if partial else limit
        self._max_fragments = max_fragments
        # zlib cannot compress with an 8-bit window: asked for one, we send our messages
        # uncompressed (RSV1 clear), which RFC 7692 allows for any message.
        self._compressor: Compressor | None = None
        if deflate is not None and deflate.client_max_window_bits >= 9:
            self._compressor = Compressor(deflate)
        self._decompressor = None if deflate is None else Decompressor(deflate)
        self._events: list[Event] = []
        self._output: list[bytes] = []
        self._batch_bytes = 0
        # Input not processed yet: an incomplete header or control frame, or input held back
        # because the batch is full.
        self._buffer = b""
        self._held = False  # whether _buffer holds input back because the batch is full
        self._done = False
        # Inflation stopped because the batch is full: (compressed input left, message ends).
        self._inflate_pending: tuple[bytes, bool] | None = None
        # The data frame being received: payload bytes still to come, and its FIN bit.
        self._frame_left = 0
        self._frame_fin = False
        # The message being received (opcode 0: none).
        self._message_opcode = 0
        self._message_type = _BINARY
        self._message_compressed = False
        self._message_size = 0
        self._message_frames = 0
        # FULL mode's reassembly (see _keep): the message's pieces, joined once at its end.
        self._message: list[bytes | bytearray] = []
        self._validator: Utf8Validator | None = None
        # PARTIAL mode: the piece being coalesced (text: may end in an incomplete character).
        self._parts: list[bytes] = []
        self._parts_size = 0
        # Whether a message of ours is unfinished (its next frame is a continuation).
        self._sending_message = False

    # ---------------------------------------------------------------- bytes in -> events out

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Process received bytes; the events come from :meth:`events_received`.

        The engine copies what it keeps: ``data`` may be reused after the call. After a
        failure, a close frame, or EOF, received bytes are ignored.
        """
        if self._done:
            return
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
            self._held = False
        elif type(data) is not bytes:
            data = bytes(data)
        if data:
            self._process(data)

    def receive_eof(self) -> None:
        """The transport reached EOF: the state becomes CLOSED, later bytes are ignored."""
        self.state = _CLOSED
        self._stop()

    def events_received(self) -> list[Event]:
        """Return the events so far and start a new batch.

        When the last batch reached :data:`EVENT_BUDGET`, the input held back is processed
        first, so call this until it returns an empty list before reading from the transport
        again.
        """
        events = self._events
        self._batch_bytes = 0
        if not events and self._held:
            self._held = False
            held, self._buffer = self._buffer, b""
            self._process(held)
            events = self._events
            self._batch_bytes = 0
        self._events = []
        return events

    def _process(self, data: bytes) -> None:
        """Parse ``data`` (preceded by whatever was held back) into events."""
        pos = 0
        end = len(data)
        try:
            if self._inflate_pending is not None:
                pending, self._inflate_pending = self._inflate_pending, None
                if not self._inflate_partial(*pending):
                    self._hold(data)
                    return
            while True:
                left = self._frame_left
                if not left and not self._message_opcode:
                    pos = self._whole_messages(data, pos, end)
                elif left:  # in a data frame's payload: take what has arrived
                    if pos == end:
                        break
                    stop = pos + left if left < end - pos else end
                    if self._partial:  # pieces go out as they come: mind the batch
                        room = EVENT_BUDGET - self._batch_bytes
                        if room <= 0:
                            self._hold(data[pos:])
                            return
                        stop = min(stop, pos + room)
                    start = pos
                    pos = stop
                    left -= stop - start
                    self._frame_left = left
                    # A read that is all payload is used as it is (bytes: never changes).
                    chunk = data if stop - start == end else data[start:stop]
                    if not (self._partial or self._validator or self._message_compressed):
                        self._full_binary_data(chunk, not left)
                        continue
                    if not self._frame_data(chunk, not left):
                        self._hold(data[pos:])
                        return
                    continue
                if self._batch_bytes >= EVENT_BUDGET:
                    self._hold(data[pos:])
                    return
                if end - pos < 2:
                    break
                first = data[pos]
                second = data[pos + 1]
                if second < 126:
                    length = second
                    start = pos + 2
                else:
                    parsed = parse_extended_header(data, pos)
                    if parsed is None:  # judge what the first byte tells already
                        if first & 0x0F >= OP_CLOSE:
                            self._check_control(first, 0)
                        else:
                            self._check_data_first_byte(first)
                        break
                    length, start = parsed
                stop = start + length
                opcode = first & 0x0F
                if opcode >= OP_CLOSE:
                    self._check_control(first, length)
                    if stop > end:
                        break
                    pos = stop
                    self._control(opcode, data[start:stop])
                    if self._done:
                        return
                    continue
                self._data_header(first, length)
                pos = start
                if not length and not self._frame_data(b"", True):
                    self._hold(data[pos:])
                    return
            if pos < end:
                self._buffer = data[pos:]
            if self._parts_size:
                self._flush_partial(False, True)
        except FrameError as error:
            self._fail(_protocol_error(str(error)))
        except _Failure as failure:
            self._fail(failure)

    def _whole_messages(self, data: bytes, pos: int, end: int) -> int:
        """The fast path: deliver the whole, unfragmented messages at ``data[pos:]`` (7- or
        16-bit lengths; compressed ones in FULL mode only; within the size limit and the
        batch budget) and return where the first other frame starts. Anything unusual is left
        to the general path, except the failures of data already inflated."""
        append = self._events.append
        limit = self._fast_limit
        budget = EVENT_BUDGET - self._batch_bytes
        received = 0
        new = _new_event
        try:
            while end - pos >= 2 and received < budget:
                first = data[pos]
                if first == _WHOLE_BINARY:
                    kind = _BINARY
                elif first == _WHOLE_TEXT:
                    kind = _TEXT
                elif first in _COMPRESSED_FIRST_BYTES:
                    if self._partial or self._decompressor is None:
                        break  # PARTIAL inflates piece by piece; no deflate: a protocol error
                    kind = _TEXT if first == _COMPRESSED_TEXT else _BINARY
                else:
                    break
                length = data[pos + 1]
                start = pos + 2
                if length >= 126:  # masked frames (>= 128) go to the general path too
                    if length != 126 or end - pos < 4:
                        break
                    length = (data[start] << 8) | data[start + 1]
                    start += 2
                    if length < 126:
                        break
                stop = start + length
                if stop > end:
                    break
                if first & 0x40:
                    payload = self._inflate_whole(data[start:stop])
                    length = len(payload)
                elif length > limit:
                    break
                else:
                    payload = data[start:stop]
                if kind is _TEXT and not payload.isascii():
                    try:
                        payload.decode()
                    except UnicodeDecodeError:
                        if first & 0x40:  # inflated already: no way back to the general path
                            raise _invalid_utf8() from None
                        break
                # DataReceived(kind, payload, True) without the cost of a Python __init__ call
                event = new(DataReceived)
                _set_message_type(event, kind)
                _set_data(event, payload)
                _set_fin(event, True)
                append(event)
                received += length
                pos = stop
        finally:
            self.bytes_received += received
            self._batch_bytes += received
        return pos

    def _inflate_whole(self, payload: bytes) -> bytes:
        """FULL mode: a whole one-frame compressed message, inflated within the size limit."""
        decompressor: Decompressor = self._decompressor  # type: ignore[assignment]
        limit = self._max_size
        try:
            data = decompressor.decompress(payload + SYNC_TAIL, 0 if limit is None else limit + 1)
        except zlib.error:
            raise _invalid_deflate() from None
        if limit is not None and len(data) > limit:
            raise self._too_big()
        decompressor.end_message()
        return data

    def _hold(self, rest: bytes) -> None:
        """Keep ``rest`` of the input for the next batch (this one is full)."""
        self._buffer = rest
        self._held = True

    def _check_control(self, first: int, length: int) -> None:
        if first & 0x0F > OP_PONG:
            raise _protocol_error(f"unknown opcode {first & 0x0F:#x}")
        if first & 0x70:
            raise _protocol_error("reserved bits set on a control frame")
        if not first & 0x80:
            raise _protocol_error("fragmented control frame")
        if length > MAX_CONTROL_PAYLOAD:
            raise _protocol_error("control frame payload over 125 bytes")

    def _check_data_first_byte(self, first: int) -> None:
        """Judge a data frame by its first byte (opcode, RSV bits, the message in progress)."""
        opcode = first & 0x0F
        if opcode > OP_BINARY:
            raise _protocol_error(f"unknown opcode {opcode:#x}")
        if first & 0x30:
            raise _protocol_error("reserved bits RSV2/RSV3 set")
        if opcode == OP_CONTINUATION:
            if not self._message_opcode:
                raise _protocol_error("continuation frame outside a fragmented message")
            if first & 0x40:
                raise _protocol_error("RSV1 set on a continuation frame")
        else:
            if self._message_opcode:
                raise _protocol_error("new data frame inside a fragmented message")
            if first & 0x40 and self._decompressor is None:
                raise _protocol_error("RSV1 set without a negotiated extension")

    def _data_header(self, first: int, length: int) -> None:
        """Check a data frame's header and start its frame (and message)."""
        self._check_data_first_byte(first)
        opcode = first & 0x0F
        if opcode != OP_CONTINUATION:
            self._message_opcode = opcode
            self._message_type = _TEXT if opcode == OP_TEXT else _BINARY
            self._message_compressed = bool(first & 0x40)
            self._message_size = 0
            self._message_frames = 0
            self._validator = Utf8Validator() if opcode == OP_TEXT else None
        if not self._partial:
            self._message_frames += 1
            if self._message_frames > self._max_fragments:
                raise _Failure(
                    _TOO_BIG,
                    _TOO_BIG_REASON,
                    f"message of over {self._max_fragments} frames exceeds max_fragments",
                )
            if not self._message_compressed and self._max_size is not None:
                self._message_size += length
                if self._message_size > self._max_size:
                    raise self._too_big()
        self._frame_left = length
        self._frame_fin = bool(first & 0x80)

    def _too_big(self) -> _Failure:
        return _Failure(
            _TOO_BIG,
            _TOO_BIG_REASON,
            f"message of over {self._max_size} bytes exceeds max_message_size {self._max_size}",
        )

    def _frame_data(self, chunk: bytes, frame_end: bool) -> bool:
        """Take a piece of the current data frame's payload. False when the batch is full
        and inflation stopped (the rest waits for the next batch)."""
        fin = frame_end and self._frame_fin
        if not self._message_compressed:
            self._message_data(chunk, fin)
            return True
        if fin:
            chunk += SYNC_TAIL
        if self._partial:
            return self._inflate_partial(chunk, fin)
        try:
            if self._max_size is None:
                data = self._decompressor.decompress(chunk, 0)  # type: ignore[union-attr]
            else:
                room = self._max_size - self._message_size
                data = self._decompressor.decompress(chunk, room + 1)  # type: ignore[union-attr]
                if len(data) > room:
                    raise self._too_big()
        except zlib.error:
            raise _invalid_deflate() from None
        self._message_size += len(data)
        self._message_data(data, fin)
        return True

    def _inflate_partial(self, chunk: bytes, fin: bool) -> bool:
        """PARTIAL mode: inflate into pieces, bounded by the piece limit at every step."""
        decompressor: Decompressor = self._decompressor  # type: ignore[assignment]
        limit = self._piece_limit
        while True:
            # At least _MIN_INFLATE: never 0 (zlib's "no bound"; text may keep an incomplete
            # character past the limit), and no call per byte with a tiny piece limit.
            room = max(limit - self._parts_size, _MIN_INFLATE)
            try:
                data = decompressor.decompress(chunk, room)
            except zlib.error:
                raise _invalid_deflate() from None
            if data:
                self._message_data(data, False)
            if len(data) < room:
                break
            chunk = decompressor.unconsumed_tail
            if self._batch_bytes >= EVENT_BUDGET:
                self._inflate_pending = (chunk, fin)
                return False
        if fin:
            self._message_data(b"", True)
        return True

    def _message_data(self, data: bytes, fin: bool) -> None:
        """Add the current message's next (uncompressed) bytes; ``fin`` ends the message."""
        validator = self._validator
        if validator is not None and not validator.feed(data, fin):
            raise _invalid_utf8()
        if self._partial:
            if data:
                self._parts.append(data)
                self._parts_size += len(data)
            if fin or self._parts_size >= self._piece_limit:
                self._flush_partial(fin, False)
        else:
            message = self._message
            if fin:
                if message:
                    _keep(message, data)
                    data = b"".join(message)
                    message.clear()
                self._emit(data, True)
            elif data:
                _keep(message, data)
        if fin:
            self._message_opcode = 0
            self._validator = None
            if self._message_compressed:
                self._decompressor.end_message()  # type: ignore[union-attr]

    def _full_binary_data(self, data: bytes, frame_end: bool) -> None:
        """FULL mode, an uncompressed binary message's next bytes."""
        message = self._message
        if frame_end and self._frame_fin:
            if message:
                _keep(message, data)
                data = b"".join(message)
                message.clear()
            self._emit(data, True)
            self._message_opcode = 0
        elif data:
            _keep(message, data)

    def _flush_partial(self, fin: bool, batch_end: bool) -> None:
        """PARTIAL mode: emit the coalesced data as pieces of at most ``piece_limit`` bytes
        (text: ending on character boundaries). Unless ``fin`` or ``batch_end``, a last piece
        under the limit stays to be coalesced with what comes next; at ``batch_end`` only an
        incomplete character stays."""
        parts = self._parts
        blob = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        size = len(blob)
        text = self._validator is not None
        stop = size - self._validator.pending if text and not fin else size  # type: ignore[union-attr]
        limit = self._piece_limit
        # Full pieces go out now; the last piece of a message may be a full one.
        longest = limit if fin else limit - 1
        start = 0
        while stop - start > longest:
            cut = start + limit
            if text and cut < stop:
                cut = character_boundary(blob, cut, start)
            self._emit(blob[start:cut], False)
            start = cut
        if fin:
            self._emit(blob[start:] if start else blob, True)
            rest = b""
        elif batch_end:
            if stop > start:
                self._emit(blob[start:stop], False)
            rest = blob[stop:]
        else:
            rest = blob[start:]
        if rest:
            parts.append(rest)
        self._parts_size = len(rest)

    def _emit(self, data: bytes, fin: bool) -> None:
        self._events.append(DataReceived(self._message_type, data, fin))
        self.bytes_received += len(data)
        self._batch_bytes += len(data)

    def _control(self, opcode: int, payload: bytes) -> None:
        """Handle a whole, valid-looking control frame."""
        if self._parts_size:  # data that arrived before the control frame goes first
            self._flush_partial(False, True)
        if opcode == OP_PING:
            if not self.close_sent:
                self._output += serialize_frame(OP_PONG, payload, fin=True)
            self._events.append(PingReceived(payload))
        elif opcode == OP_PONG:
            self._events.append(PongReceived(payload))
        else:
            self._close_frame(payload)

    def _close_frame(self, payload: bytes) -> None:
        if not payload:
            code, reason = 1005, ""
        elif len(payload) == 1:
            raise _protocol_error("close frame with a 1-byte payload")
        else:
            code = int.from_bytes(payload[:2], "big")
            if not valid_close_code(code):
                raise _protocol_error(f"close frame with invalid code {code}")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise _Failure(
                    _INVALID_DATA,
                    "invalid UTF-8",
                    "the server sent a close reason that is not valid UTF-8",
                ) from None
        close = CloseReceived(code, reason)
        self.close_received = close
        if not self.close_sent:
            echo = b"" if code == 1005 else payload[:2]
            self._output += serialize_frame(OP_CLOSE, echo, fin=True)
            self.close_sent = True
        self.state = _CLOSED
        self._events.append(close)
        self._stop()

    def _fail(self, failure: _Failure) -> None:
        if self._parts_size:  # what was valid before the failure is delivered
            self._flush_partial(False, True)
        self._events.append(ProtocolError(failure.code, failure.reason, failure.message))
        if not self.close_sent:
            payload = failure.code.to_bytes(2, "big") + failure.reason.encode()
            self._output += serialize_frame(OP_CLOSE, payload, fin=True)
            self.close_sent = True
        self.state = _CLOSED
        self._stop()

    def _stop(self) -> None:
        """Ignore all later input and drop what was held for it."""
        self._done = True
        self._buffer = b""
        self._held = False
        self._inflate_pending = None
        self._parts.clear()
        self._parts_size = 0
        self._message.clear()
        self._frame_left = 0

    # ---------------------------------------------------------------- calls in -> bytes out

    def send_data(
        self,
        message_type: SocketMessageType,
        payload: bytes | bytearray | memoryview,
        *,
        fin: bool,
    ) -> int:
        """Queue one data frame. The first frame of a message is TEXT or BINARY by
        ``message_type``; later frames of an unfinished message are continuations (their
        ``message_type`` is ignored). Compressed when deflate was negotiated.

        Returns the payload length (uncompressed). Raises :class:`RuntimeError` unless the
        state is OPEN. Does not validate text: the caller does.
        """
        if self.state is not _OPEN:
            raise RuntimeError(f"cannot send data in state {self.state.name}")
        first = not self._sending_message
        if not first:
            opcode = OP_CONTINUATION
        elif message_type == _TEXT:
            opcode = OP_TEXT
        else:
            opcode = OP_BINARY
        self._sending_message = not fin
        compressor = self._compressor
        if compressor is None:
            self._output += serialize_frame(opcode, payload, fin=fin)
        else:
            self._output += serialize_frame(
                opcode, compressor.compress(payload, fin), fin=fin, rsv1=first
            )
        length = len(payload)
        self.bytes_sent += length
        return length

    def _send_control(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        if self.close_sent or self.state is _CLOSED:
            raise RuntimeError("cannot send a control frame after the close frame")
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError("a control frame's payload is at most 125 bytes")
        self._output += serialize_frame(opcode, payload, fin=True)

    def send_ping(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Queue a ping (payload at most 125 bytes, else :class:`ValueError`; after a close
        frame :class:`RuntimeError`)."""
        self._send_control(OP_PING, payload)

    def send_pong(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Queue an unsolicited pong (same rules as :meth:`send_ping`)."""
        self._send_control(OP_PONG, payload)

    def send_close(self, code: int | None = None, reason: str = "") -> None:
        """Queue our close frame: empty when ``code`` is None, else the code (1000-1003,
        1007-1014 or 3000-4999) and the reason (at most 123 UTF-8 bytes), else
        :class:`ValueError`. :class:`RuntimeError` if a close frame was already sent. The
        state becomes CLOSING (CLOSED if the server's close frame was already received)."""
        if self.close_sent or self.state is _CLOSED:
            raise RuntimeError("a close frame was already sent, or the connection is closed")
        self._output += serialize_frame(OP_CLOSE, _close_payload(code, reason), fin=True)
        self.close_sent = True
        self.state = _CLOSING

    def fail(self, code: int, reason: str = "") -> None:
        """A local failure (e.g. a keepalive timeout): queue a close frame with ``code`` and
        ``reason`` unless one was sent; the state becomes CLOSING. Received data is still
        processed, so the server's close frame completes the handshake."""
        if self.state is _CLOSED:
            return
        if not self.close_sent:
            self._output += serialize_frame(OP_CLOSE, _close_payload(code, reason), fin=True)
            self.close_sent = True
        self.state = _CLOSING

    def data_to_send(self) -> list[bytes]:
        """Return the queued output buffers, in order, and forget them."""
        output = self._output
        self._output = []
        return output


#: FULL mode: pieces of a message under this many bytes are gathered in a bytearray.
_SMALL_PIECE = 4096


def _keep(message: list[bytes | bytearray], data: bytes) -> None:
    """Add ``data`` to a message being reassembled. Large pieces are kept as they are (a
    read that is all payload is not copied before the final join); small ones are gathered
    in a bytearray, so a message of many tiny frames costs memory in proportion to its
    bytes, not an object per frame."""
    if len(data) >= _SMALL_PIECE:
        message.append(data)
    elif message and type(message[-1]) is bytearray:
        message[-1] += data
    else:
        message.append(bytearray(data))


def _close_payload(code: int | None, reason: str) -> bytes:
    """A close frame's payload, or ValueError for a code or reason that may not be sent."""
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not valid_close_code(code):
        raise ValueError(
            f"close code {code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)"
        )
    encoded = reason.encode()
    if len(encoded) > MAX_CONTROL_PAYLOAD - 2:
        raise ValueError("close reason is longer than 123 UTF-8 bytes")
    return code.to_bytes(2, "big") + encoded
