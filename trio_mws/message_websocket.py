"""``MessageWebSocket``: the socket, its connection tasks and its public operations.

Shape: ``connect`` runs the opening pipeline, then starts the connection tasks in the socket's
own nursery: one reader (socket bytes -> wsproto -> events on a bounded memory channel) and
one writer (:class:`~trio_mws.writer.FrameWriter`, the only place that writes), plus the
keepalive task. ``self._state`` is the truth about the connection, not the engine's state.
"""

from __future__ import annotations

import codecs
import logging
import os
from types import TracebackType
from typing import Any, NoReturn

import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason

from .certificates import CustomValidator
from .compression import PARTIAL_INFLATE_LIMIT, ClientPerMessageDeflate, feed_size
from .control import MessageWebSocketControl
from .enums import MessageWebSocketReceiveMode, SocketMessageType, WebErrorStatus, WebSocketState
from .errors import ConnectError, ConnectionClosed, MessageTooBig, WebSocketError
from .events import Closed, MessageReceived
from .frames import OP_BINARY, OP_CONTINUATION, OP_TEXT, encode_frame
from .handshake import check_request_header
from .information import MessageWebSocketInformation
from .keepalive import start_keepalive
from .limits import BAD_GATEWAY, EngineGuard
from .opening import open_connection
from .status import classify
from .transport import direct_descriptor
from .uri import parse_uri
from .writer import FrameWriter

__all__ = ["MessageWebSocket"]

logger = logging.getLogger("trio_mws")

#: Bytes asked of the socket per read: large, so big messages need few reads.
RECEIVE_SIZE = 64 * 1024  # larger reads cost a mmap per read in CPython...
#: ... which is worth it while data streams in: fewer, larger chunks for the engine.
BULK_RECEIVE_SIZE = 1024 * 1024

_VALID_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


def check_close_arguments(code: int | None, reason: str) -> bytes:
    """Validate a local close's code and reason; return the reason as UTF-8."""
    if not isinstance(reason, str):
        raise TypeError("reason must be a str")
    encoded = reason.encode("utf-8")
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return encoded
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError("code must be an int or None")
    if code not in _VALID_CLOSE_CODES and not 3000 <= code <= 4999:
        raise ValueError(
            f"close code {code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)"
        )
    if len(encoded) > 123:
        raise ValueError("close reason is longer than 123 UTF-8 bytes")
    return encoded


def _split_chunk(data: bytes, limit: int, text: bool) -> list[bytes]:
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


class _Fail(Exception):
    """Internal: the reader must stop; the failure has been recorded."""


class MessageWebSocket(trio.abc.AsyncResource):
    """A message-oriented WebSocket client, like Windows' ``MessageWebSocket``.

    Configure :attr:`control` and request headers, then ``async with ws:`` and
    ``await ws.connect(uri)``; or use :func:`open_message_websocket`. All operations are
    trio-native; every network failure is a :class:`WebSocketError` with a status.
    """

    # Slots: thousands of idle connections should cost as little memory as possible.
    __slots__ = (
        "_close_sent",
        "_closed",
        "_connecting",
        "_debug",
        "_deflate",
        "_deliver_scope",
        "_engine",
        "_events_in",
        "_events_out",
        "_extensions",
        "_failure",
        "_fd",
        "_feed_size",
        "_finished",
        "_fragment_done",
        "_fragment_owner",
        "_fragment_text",
        "_guard",
        "_headers",
        "_limit",
        "_nursery",
        "_nursery_manager",
        "_partial",
        "_parts",
        "_pings",
        "_read_size",
        "_reader_paused",
        "_size",
        "_state",
        "_stream",
        "_stream_closed",
        "_used",
        "_writer",
        "control",
        "information",
        "server_custom_validation_requested",
    )

    def __init__(self, control: MessageWebSocketControl | None = None) -> None:
        if control is not None and not isinstance(control, MessageWebSocketControl):
            raise TypeError("control must be a MessageWebSocketControl")
        #: The settings (frozen once ``connect`` starts).
        self.control = control if control is not None else MessageWebSocketControl()
        #: Facts about the connection, readable at any time.
        self.information = MessageWebSocketInformation()
        #: Optional callback (sync or async) for custom server certificate validation.
        self.server_custom_validation_requested: CustomValidator | None = None
        self._headers: dict[str, tuple[str, str]] = {}
        self._state = WebSocketState.CONNECTING
        self._connecting = False
        self._used = False  # connect succeeded once, or close() ran: no more connects
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._stream: trio.abc.Stream | None = None
        self._fd: int | None = None  # for direct reads and writes, while the socket is open
        self._debug = False  # per-frame debug logging, decided at connect
        self._stream_closed = False
        self._read_size = RECEIVE_SIZE
        self._engine: Connection | None = None
        self._extensions: list[Extension] = []
        self._deflate: ClientPerMessageDeflate | None = None
        self._writer: FrameWriter | None = None
        self._events_in: trio.MemorySendChannel[MessageReceived] | None = None
        self._events_out: trio.MemoryReceiveChannel[MessageReceived] | None = None
        self._closed: Closed | None = None
        self._failure: ConnectionClosed | None = None
        self._close_sent = False
        self._finished = trio.Event()
        self._deliver_scope: trio.CancelScope | None = None
        self._reader_paused = False
        # Reassembly (FULL_MESSAGE) of the message being received.
        self._parts: list[bytes] = []
        self._size = 0
        # The fragmented message being sent: its owner task, type and UTF-8 checker.
        self._fragment_owner: trio.lowlevel.Task | None = None
        self._fragment_text: codecs.BufferedIncrementalDecoder | None = None
        self._fragment_done: trio.lowlevel.ParkingLot | None = None  # created when needed
        self._pings: dict[bytes, _PingWaiter] = {}

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> WebSocketState:
        """CONNECTING (also before connect), OPEN, CLOSING or CLOSED."""
        return self._state

    @property
    def closed(self) -> Closed | None:
        """The completed close handshake, or ``None`` (open, or lost without one)."""
        return self._closed

    def set_request_header(self, name: str, value: str) -> None:
        """Add a header to the upgrade request; a later call with the same name replaces it.

        Only before ``connect`` (``RuntimeError`` after). ``ValueError`` for a name that is not
        an HTTP token, a value with CR, LF or NUL, or one of the handshake's own headers.
        """
        if self._connecting or self._used:
            raise RuntimeError("request headers can only be set before connect")
        name, value = check_request_header(name, value)
        self._headers[name.lower()] = (name, value)

    # -- the socket's nursery ----------------------------------------------------------------

    async def __aenter__(self) -> MessageWebSocket:
        if self._nursery_manager is not None:
            raise RuntimeError("this MessageWebSocket is already entered")
        manager = trio.open_nursery()
        self._nursery = await manager.__aenter__()
        self._nursery_manager = manager
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                await self.close(1000)
            elif isinstance(exc, Exception):
                await self._close_after_error()
            else:  # Cancelled, KeyboardInterrupt: no handshake, just let go promptly
                await self._abort()
        finally:
            await self._exit_nursery()

    async def _close_after_error(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self.close(1011)
            except WebSocketError:  # pragma: no cover - close() reports nothing
                pass

    async def _exit_nursery(self) -> None:
        manager, nursery = self._nursery_manager, self._nursery
        if manager is None or nursery is None:
            return
        nursery.cancel_scope.cancel()
        try:
            await manager.__aexit__(None, None, None)
        except BaseExceptionGroup as group:  # pragma: no cover - the tasks never raise
            # Designing for multiple errors: our tasks catch everything, so a group here is
            # a bug; surface one exception rather than a group, never silently nothing.
            cancelled, rest = group.split(trio.Cancelled)
            if rest is not None:
                raise rest.exceptions[0] from group
            if cancelled is not None:
                raise cancelled.exceptions[0] from None
        finally:
            self._nursery_manager = self._nursery = None
            await self._close_stream()  # never leave the socket to the garbage collector
            self._state = WebSocketState.CLOSED if self._used else self._state

    # -- connecting --------------------------------------------------------------------------

    async def connect(self, uri: str) -> None:
        """Open the connection to ``uri`` (absolute ``ws://``/``wss://``, no fragment).

        ``ValueError`` before any I/O for a bad URI; ``RuntimeError`` when already connecting,
        open or closed, or when not inside ``async with ws``; :class:`ConnectError` (or a
        subclass) when opening fails, after which the socket may be connected again.
        """
        parsed = parse_uri(uri)
        if self._connecting or self._used:
            raise RuntimeError("connect() on a socket that is connecting, open or closed")
        if self._nursery is None:
            raise RuntimeError("call connect() inside `async with ws:` (it owns a nursery)")
        self.control._freeze()  # validates lists mutated in place: may raise ValueError
        self._connecting = True
        try:
            opened = await open_connection(
                parsed,
                self.control,
                dict(self._headers.values()),
                self.server_custom_validation_requested,
            )
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._connect_failed()
            raise ConnectError(f"opening {parsed} failed: {exc}", classify(exc)) from exc
        except BaseException:
            self._connect_failed()
            raise
        self._connecting = False
        self._used = True
        self._stream = opened.stream
        self._deflate = opened.upgrade.deflate
        extensions: list[Extension] = [self._deflate] if self._deflate is not None else []
        self._partial = self.control.receive_mode is MessageWebSocketReceiveMode.PARTIAL_MESSAGE
        self._limit = self.control.max_message_size
        self._guard = EngineGuard(None if self._partial else self._limit)
        extensions.append(self._guard)
        self._extensions = extensions  # the engine is made when first needed: _get_engine()
        # On POSIX, a plain TCP socket is read and written with direct non-blocking system
        # calls on its descriptor (see writer.py); TLS goes through the trio stream.
        self._fd = direct_descriptor(opened.stream)
        self._writer = FrameWriter(opened.stream, self._on_write_error, self._nursery, self._fd)
        # With compression, the engine gets small slices so that one never inflates beyond
        # the chunk limit (see compression.py).
        self._feed_size = RECEIVE_SIZE  # the engine copies what it gets: small pieces recycle
        if self._deflate is not None:
            inflate_limit = self.control.max_message_size
            if self.control.receive_mode is MessageWebSocketReceiveMode.PARTIAL_MESSAGE:
                inflate_limit = min(inflate_limit or PARTIAL_INFLATE_LIMIT, PARTIAL_INFLATE_LIMIT)
            self._feed_size = feed_size(inflate_limit)
        info = self.information
        info.protocol = opened.upgrade.protocol
        info._handshake_head = opened.upgrade.head
        info._socket = opened.tcp.socket  # type: ignore[assignment]
        info.local_address = opened.local_address
        info.remote_address = opened.remote_address
        info.timings = opened.timings
        if opened.tls is not None:
            info.server_certificate = opened.tls.certificate
            info.server_intermediate_certificates = opened.tls.intermediates
            info.server_certificate_errors = opened.tls.errors
            info.server_certificate_error_severity = opened.tls.severity
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self._state = WebSocketState.OPEN
        logger.debug(
            "connected to %s (protocol %s, %s)",
            opened.uri,
            info.protocol,
            "compressed" if self._deflate else "uncompressed",
        )
        self._nursery.start_soon(self._read_loop, opened.upgrade.trailing)
        start_keepalive(self, self._nursery)

    def _connect_failed(self) -> None:
        self._connecting = False
        self.control._unfreeze()

    # -- sending -----------------------------------------------------------------------------

    def _payload(
        self, data: object, message_type: SocketMessageType | None
    ) -> tuple[bytes, SocketMessageType]:
        if isinstance(data, str):
            if message_type not in (None, SocketMessageType.UTF8):
                raise TypeError("str is always sent as UTF8; pass bytes for a BINARY message")
            return data.encode("utf-8"), SocketMessageType.UTF8
        if isinstance(data, (bytes, bytearray, memoryview)):
            payload = data if type(data) is bytes else bytes(data)
            kind = self.control.message_type if message_type is None else message_type
            if type(kind) is not SocketMessageType:
                kind = SocketMessageType(kind)  # ValueError for anything but 0 and 1
            return payload, kind
        raise TypeError(f"data must be str or bytes-like, not {type(data).__name__}")

    def _check_sendable(self) -> None:
        if self._state is WebSocketState.OPEN:
            return
        if self._state is WebSocketState.CONNECTING:
            raise RuntimeError("the socket is not connected")
        raise self._closed_error()

    async def _wait_turn(self) -> None:
        """Wait until no other task's fragmented message is in progress and the write queue
        has room — both at once: a fragmented message may start while we wait for room."""
        me = trio.lowlevel.current_task()
        while True:
            owner = self._fragment_owner
            if owner is me:
                raise RuntimeError(
                    "a fragmented message is in progress in this task: "
                    "finish it with send_final_frame() first"
                )
            if owner is not None:
                if self._fragment_done is None:
                    self._fragment_done = trio.lowlevel.ParkingLot()
                await self._fragment_done.park()
            elif self._writer is not None and self._writer.must_wait():
                await self._writer.wait_for_space()
            else:
                return

    async def send(
        self,
        data: str | bytes | bytearray | memoryview,
        message_type: SocketMessageType | None = None,
    ) -> None:
        """Send one complete message: ``str`` as UTF8, bytes as ``message_type`` or
        ``control.message_type``.

        ``ValueError`` for bytes sent as UTF8 that are not valid UTF-8. Returns once the
        message is queued for writing; concurrent senders never interleave. Cancelling a send
        is safe: the message is then either entirely sent or not at all.
        """
        payload, kind = self._payload(data, message_type)
        if kind is SocketMessageType.UTF8 and not isinstance(data, str):
            _check_utf8(payload)
        await trio.lowlevel.checkpoint_if_cancelled()
        writer = self._writer
        if (
            self._state is not WebSocketState.OPEN
            or self._fragment_owner is not None
            or writer is None
            or writer.must_wait()
        ):
            self._check_sendable()
            await self._wait_turn()
            self._check_sendable()
        self._send_data(OP_TEXT if kind is SocketMessageType.UTF8 else OP_BINARY, payload, True)

    def _send_data(self, opcode: int, payload: bytes, fin: bool) -> None:
        """Serialize and queue one data frame (the data half of the write choke point)."""
        assert self._writer is not None
        if self._deflate is not None:
            payload, rsv1 = self._compress(opcode, payload, fin)
        else:
            rsv1 = False
        self._writer.write(*encode_frame(opcode, payload, fin, rsv1))
        info = self.information
        info.bytes_sent += len(payload)
        if fin:
            info.messages_sent += 1
        if self._debug:
            logger.debug("> data frame opcode=%d fin=%s %d bytes", opcode, fin, len(payload))

    def _compress(self, opcode: int, payload: bytes, fin: bool) -> tuple[bytes, bool]:
        from wsproto.frame_protocol import Opcode, RsvBits

        assert self._deflate is not None
        rsv, data = self._deflate.frame_outbound(
            _CLIENT_SIDE,  # type: ignore[arg-type]
            Opcode(opcode),
            RsvBits(False, False, False),
            payload,
            fin,
        )
        return bytes(data), rsv.rsv1

    async def send_nonfinal_frame(self, data: str | bytes | bytearray | memoryview) -> int:
        """Send one frame of a fragmented message with FIN=0; returns the payload length.

        The first frame's type comes from the data (``str``: UTF8, bytes:
        ``control.message_type``); later frames are continuations. Other tasks' sends wait
        until :meth:`send_final_frame`; this task may not ``send`` in between (RuntimeError).
        """
        return await self._send_fragment(data, fin=False)

    async def send_final_frame(self, data: str | bytes | bytearray | memoryview) -> int:
        """Send the frame with FIN=1 that ends a message (or a whole one-frame message)."""
        return await self._send_fragment(data, fin=True)

    async def _send_fragment(self, data: str | bytes | bytearray | memoryview, *, fin: bool) -> int:
        me = trio.lowlevel.current_task()
        payload, kind = self._payload(data, None)
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_sendable()
        if self._fragment_owner is not me:
            if self._fragment_owner is not None or (self._writer and self._writer.must_wait()):
                await self._wait_turn()
                self._check_sendable()
            checker = codecs.getincrementaldecoder("utf-8")() if kind else None
            assert checker is None or isinstance(checker, codecs.BufferedIncrementalDecoder)
            opcode = OP_TEXT if kind is SocketMessageType.UTF8 else OP_BINARY
        else:
            checker = self._fragment_text
            opcode = OP_CONTINUATION
            if isinstance(data, str) and checker is None:
                raise TypeError("the message in progress is BINARY: send bytes")
            if self._writer is not None and self._writer.must_wait():
                await self._writer.wait_for_space()
                self._check_sendable()
        if checker is not None and not isinstance(data, str):
            try:
                checker.decode(payload, fin)
            except UnicodeDecodeError as exc:
                raise ValueError(f"data is not valid UTF-8: {exc}") from None
        elif checker is not None and fin:
            try:
                checker.decode(b"", True)
            except UnicodeDecodeError as exc:
                raise ValueError(f"data is not valid UTF-8: {exc}") from None
        self._send_data(opcode, payload, fin)
        if fin:
            self._fragment_owner = None
            self._fragment_text = None
            if self._fragment_done is not None:
                self._fragment_done.unpark_all()
        else:
            self._fragment_owner = me
            self._fragment_text = checker
        return len(payload)

    @property
    def output_stream(self) -> trio.abc.SendStream:
        """A ``trio.abc.SendStream``: each ``send_all(data)`` sends one whole message of
        ``control.message_type``."""
        from .output_stream import MessageOutputStream

        return MessageOutputStream(self)

    def _write_control(self, event: Ping | Pong | CloseConnection) -> None:
        """Serialize a control frame with the engine and queue it (choke point, control half)."""
        assert self._writer is not None
        engine = self._get_engine()
        try:
            frame = engine.send(event)
        except Exception:  # the engine refuses in a state where the frame is pointless
            logger.debug("engine refused %r in state %s", event, engine.state)
            return
        self._writer.write(frame)
        if self._debug:
            logger.debug("> %r", event)

    async def ping(self, payload: bytes = b"") -> float:
        """Send a ping and wait for its pong; returns the round-trip time in seconds.

        An empty payload is replaced by 4 random bytes so the pong can be matched. Raises
        :class:`ConnectionClosed` if the connection closes first.
        """
        if not isinstance(payload, (bytes, bytearray)):
            raise TypeError("ping payload must be bytes")
        if len(payload) > 125:
            raise ValueError("ping payload is longer than 125 bytes")
        payload = bytes(payload) or os.urandom(4)
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_sendable()
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        waiter = _PingWaiter()
        self._pings[payload] = waiter
        try:
            self._write_control(Ping(payload))
            await waiter.done.wait()
        finally:
            self._pings.pop(payload, None)
        if not waiter.answered:
            raise self._closed_error()
        latency = trio.current_time() - waiter.start
        self.information.latency = latency
        return latency

    def _on_pong(self, payload: bytes) -> None:
        if payload not in self._pings:
            return
        # A pong acknowledges its ping and all pings sent before it.
        for key in list(self._pings):
            waiter = self._pings.pop(key)
            waiter.answered = True
            waiter.done.set()
            if key == payload:
                break

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self) -> MessageReceived:
        """The next :class:`MessageReceived`. Cancel-safe: cancelling never loses a message.

        After the connection closes, raises :class:`ConnectionClosed` (with the close code) —
        only once every message that arrived before the close has been returned.
        """
        channel = self._events_out
        if channel is None:
            if self._stream is None:
                if self._state is WebSocketState.CONNECTING:
                    raise RuntimeError("the socket is not connected")
                raise self._closed_error()
            channel = self._make_channel()[1]
        await trio.lowlevel.checkpoint_if_cancelled()  # before taking anything: cancel-safe
        try:
            return channel.receive_nowait()
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            raise self._closed_error() from None
        try:
            return await channel.receive()
        except trio.EndOfChannel:
            raise self._closed_error() from None

    def __aiter__(self) -> MessageWebSocket:
        return self

    async def __anext__(self) -> MessageReceived:
        """``async for``: messages until a clean close; a lost connection raises."""
        try:
            return await self.receive()
        except ConnectionClosed:
            if self._closed is not None and self._failure is None:
                raise StopAsyncIteration from None
            raise

    def events(self) -> _EventIterator:
        """An async iterator of :class:`MessageReceived` events and, last, one :class:`Closed`.

        A connection lost without a close handshake raises :class:`ConnectionClosed` instead.
        """
        return _EventIterator(self)

    def _closed_error(self) -> ConnectionClosed:
        failure = self._failure
        if failure is not None:
            error = type(failure)(
                str(failure), failure.status, code=failure.code, reason=failure.reason
            )
            error.__cause__ = failure.__cause__
            return error
        closed = self._closed
        if closed is not None:
            return ConnectionClosed(
                f"the connection is closed (code {closed.code}"
                + (f", reason {closed.reason!r})" if closed.reason else ")"),
                WebErrorStatus.DISCONNECTED,
                code=closed.code,
                reason=closed.reason,
            )
        return ConnectionClosed("the connection is closed", WebErrorStatus.CONNECTION_ABORTED)

    # -- the reader task ---------------------------------------------------------------------

    # An idle connection costs less with its engine and event channel made only when first
    # needed: the engine when the first byte arrives or a control frame goes out, the channel
    # when the first event arrives or the application first waits for one.

    def _get_engine(self) -> Connection:
        engine = self._engine
        if engine is None:
            engine = self._engine = Connection(ConnectionType.CLIENT, self._extensions)
        return engine

    def _make_channel(
        self,
    ) -> tuple[trio.MemorySendChannel[MessageReceived], trio.MemoryReceiveChannel[MessageReceived]]:
        assert self._events_in is None and self._events_out is None
        sender, receiver = trio.open_memory_channel[MessageReceived](
            self.control.message_queue_size
        )
        self._events_in, self._events_out = sender, receiver
        if self._state is WebSocketState.CLOSED:  # nothing arrived and nothing will
            sender.close()
        return sender, receiver

    async def _read_loop(self, trailing: bytes) -> None:
        assert self._stream is not None
        try:
            if trailing:
                await self._feed(trailing)
            while self._closed is None:
                try:
                    data = await self._receive()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._lost(exc)
                    return
                if not data:
                    self._lost(None)
                    return
                await self._feed(data)
            await self._wait_for_eof()
        except _Fail:
            pass
        except Exception as exc:  # a bug here must not become the nursery's exception
            logger.exception("trio_mws reader failed")
            if self._failure is None:
                self._failure = ConnectionClosed(f"internal error: {exc!r}", WebErrorStatus.UNKNOWN)
                self._failure.__cause__ = exc
        finally:
            self._finish()
            await self._close_transport()  # also when cancelled: it closes the socket anyway

    async def _receive(self) -> bytes:
        """The next bytes from the server (``b""`` at EOF)."""
        if self._fd is None:
            return bytes(await self._stream.receive_some(RECEIVE_SIZE))  # type: ignore[union-attr]
        while True:
            fd = self._fd
            if fd is None:
                raise trio.ClosedResourceError("the socket was closed")
            size = self._read_size
            if not size:  # the last read emptied the socket: wait before trying again
                self._read_size = size = RECEIVE_SIZE
                await trio.lowlevel.wait_readable(fd)
                continue
            try:
                data = os.read(fd, size)
            except BlockingIOError:
                data = None
            if data is None:  # wait outside the except block: no exception kept alive
                await trio.lowlevel.wait_readable(fd)
                continue
            if len(data) == size:  # more is waiting: read big, but let other tasks run first
                self._read_size = BULK_RECEIVE_SIZE
                await trio.lowlevel.cancel_shielded_checkpoint()
            else:
                self._read_size = 0  # a short read: the socket is most likely empty now
            assert self._writer is not None
            self._writer.allow_direct()
            return data

    async def _feed(self, data: bytes) -> None:
        engine = self._get_engine()
        size = self._feed_size
        if len(data) <= size:
            engine.receive_data(data)
            await self._process_events()
            return
        view = memoryview(data)
        for start in range(0, len(data), size):
            engine.receive_data(bytes(view[start : start + size]))
            await self._process_events()
            if self._closed is not None:
                return

    async def _process_events(self) -> None:
        engine = self._engine
        assert engine is not None
        for event in engine.events():
            if type(event) is BytesMessage:
                data = event.data
                await self._on_data(
                    SocketMessageType.BINARY,
                    data if type(data) is bytes else bytes(data),
                    event.message_finished,
                )
            elif type(event) is TextMessage:
                await self._on_data(
                    SocketMessageType.UTF8, event.data.encode("utf-8"), event.message_finished
                )
            elif isinstance(event, Ping):
                self._write_control(event.response())
                writer = self._writer
                if writer is not None and writer.must_wait():  # a ping flood, unread pongs
                    await writer.wait_for_space()
            elif isinstance(event, Pong):
                self._on_pong(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                self._on_close(event)
                return

    async def _on_data(self, kind: SocketMessageType, data: bytes, finished: bool) -> None:
        info = self.information
        info.bytes_received += len(data)
        if finished and not self._parts and not self._partial:  # a whole message in one frame
            info.messages_received += 1
            await self._deliver(MessageReceived(kind, data, True))
            return
        limit = self._limit
        if self._partial:
            if finished:
                info.messages_received += 1
            if limit is not None and len(data) > limit:
                pieces = _split_chunk(data, limit, kind is SocketMessageType.UTF8)
                for piece in pieces[:-1]:
                    await self._deliver(MessageReceived(kind, piece, False))
                data = pieces[-1]
            if data or finished:
                await self._deliver(MessageReceived(kind, data, finished))
            return
        self._size += len(data)
        if limit is not None and self._size > limit:
            self._fail(
                MessageTooBig(
                    f"message of over {self._size} bytes exceeds max_message_size {limit}",
                    WebErrorStatus.CONNECTION_ABORTED,
                    code=1009,
                    reason="message too big",
                ),
                close_code=1009,
            )
        if not finished:
            self._parts.append(data)
            return
        if self._parts:
            self._parts.append(data)
            data = b"".join(self._parts)
            self._parts = []
        self._size = 0
        info.messages_received += 1
        await self._deliver(MessageReceived(kind, data, True))

    async def _deliver(self, event: MessageReceived) -> None:
        channel = self._events_in
        if channel is None:
            channel = self._make_channel()[0]
        try:
            channel.send_nowait(event)
            return
        except trio.WouldBlock:
            pass
        if self._state is not WebSocketState.OPEN:
            return  # closing locally and the application is not reading: discard
        self._reader_paused = True
        try:
            with trio.CancelScope() as scope:
                self._deliver_scope = scope
                await channel.send(event)
        except trio.ClosedResourceError:
            raise _Fail from None  # aborted while the application was not reading
        finally:
            self._deliver_scope = None
            self._reader_paused = False

    def _on_close(self, event: CloseConnection) -> None:
        engine = self._engine
        assert engine is not None
        if engine.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            # The engine found a protocol error: it reports it as a close it wants to send.
            code = int(event.code)
            status = (
                WebErrorStatus.CONNECTION_ABORTED
                if code == 1009
                else WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE
            )
            error_type = MessageTooBig if code == 1009 else ConnectionClosed
            self._fail(
                error_type(
                    f"protocol error from the server: {event.reason}",
                    status,
                    code=code,
                    reason=event.reason or "",
                ),
                close_code=code,
            )
        code = int(event.code)
        if code == CloseReason.INTERNAL_ERROR and self._guard.saw_bad_gateway:
            code = BAD_GATEWAY
            event = CloseConnection(code, event.reason)
        reason = event.reason or ""
        if self._debug:
            logger.debug("< close %d %r", code, reason)
        if engine.state is ConnectionState.REMOTE_CLOSING:
            self._state = WebSocketState.CLOSING
            self._write_control(event.response())
            self._close_sent = True
            self._closed = Closed(code, reason, initiated_locally=False)
        else:
            self._closed = Closed(code, reason, initiated_locally=True)
        self._drop_partial_fragment_state()

    def _drop_partial_fragment_state(self) -> None:
        self._parts = []
        self._size = 0

    async def _wait_for_eof(self) -> None:
        """After the close handshake: the server closes TCP first; wait for it, bounded."""
        fd = self._fd
        if fd is not None:  # most often the server's FIN came with its close frame
            try:
                if not os.read(fd, RECEIVE_SIZE):
                    return
            except BlockingIOError:
                pass
            except OSError:
                return
        with trio.move_on_after(self.control.close_timeout):
            try:
                while await self._receive():
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass

    def _lost(self, exc: BaseException | None) -> None:
        """The transport ended without a complete close handshake."""
        if self._failure is not None or self._closed is not None:
            return
        if self._state is WebSocketState.CLOSED:
            return  # we aborted it ourselves
        if exc is None:
            error = ConnectionClosed(
                "the server closed the connection without a close frame",
                WebErrorStatus.DISCONNECTED,
            )
        else:
            status = classify(exc)
            if status is WebErrorStatus.UNKNOWN:
                status = WebErrorStatus.CONNECTION_ABORTED
            error = ConnectionClosed(f"the connection was lost: {exc}", status)
            error.__cause__ = exc
        self._failure = error
        logger.debug("connection lost: %s", error)

    def _fail(self, error: ConnectionClosed, close_code: int | None = None) -> NoReturn:
        """Fail the connection from the reader: record why, send a close frame, stop."""
        if self._failure is None and self._closed is None:
            self._failure = error
        if close_code is not None and not self._close_sent:
            self._close_sent = True
            self._write_control(CloseConnection(close_code, error.reason or None))
        logger.debug("failing the connection: %s", error)
        raise _Fail

    def _finish(self) -> None:
        """The reader is done: end the event stream; the transport is closed next."""
        self._state = WebSocketState.CLOSED
        if self._events_in is not None:
            self._events_in.close()
        for waiter in self._pings.values():
            waiter.done.set()  # unanswered: ping() raises ConnectionClosed

    async def _close_transport(self) -> None:
        """Flush what is queued (a close frame, most often), briefly, then close the socket.

        After failing the connection with a close frame, the socket is half-closed and what
        the server still sends is discarded until it closes too (at most a second): closing
        with unread data makes the kernel send a reset, and a reset can destroy the close
        frame before the server has read it.
        """
        writer = self._writer
        drain = self._failure is not None and self._close_sent and self._closed is None
        try:
            if drain or (writer is not None and (writer.queued or writer.writing)):
                with trio.move_on_after(min(1.0, self.control.close_timeout)):
                    if writer is not None:
                        await writer.flush()
                    if drain:
                        await self._drain()
        finally:
            await self._close_stream()
            self._finished.set()

    async def _drain(self) -> None:
        stream = self._stream
        try:
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            while await self._receive():
                pass
        except (
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            trio.BusyResourceError,
            OSError,
        ):
            pass

    async def _close_stream(self) -> None:
        """Close the socket, the only way it is closed: the writer lets go of the file
        descriptor first (a closed descriptor's number may be reused at once)."""
        self._fd = None
        if self._writer is not None:
            self._writer.detach()
        stream = self._stream
        if stream is not None and not self._stream_closed:
            self._stream_closed = True
            if isinstance(stream, trio.SocketStream):
                stream.socket.close()  # synchronous: what aclose() does, minus its checkpoint
            else:
                await trio.aclose_forcefully(stream)

    def _on_write_error(self, exc: BaseException) -> None:
        if self._state is WebSocketState.CLOSED or self._failure is not None:
            return
        if self._closed is None:
            status = classify(exc)
            if status is WebErrorStatus.UNKNOWN:
                status = WebErrorStatus.CONNECTION_ABORTED
            error = ConnectionClosed(f"the connection was lost while writing: {exc}", status)
            error.__cause__ = exc
            self._failure = error
        if self._nursery is not None:
            self._nursery.start_soon(self._close_stream)

    # -- closing -----------------------------------------------------------------------------

    async def close(self, code: int | None = None, reason: str = "") -> None:
        """Close the connection: send a close frame (empty when ``code`` is None), wait for
        the server's close frame and TCP close, at most ``control.close_timeout`` seconds,
        then abort the TCP connection if need be. Never raises for network reasons.

        ``ValueError`` for a code other than 1000-1003, 1007-1014, 3000-4999, or a reason
        over 123 UTF-8 bytes, before anything is sent. Idempotent; a cancelled close still
        closes (abruptly).
        """
        check_close_arguments(code, reason)
        if self._stream is None:  # never connected
            await trio.lowlevel.checkpoint()
            if not self._connecting:
                self._used = True
                self._state = WebSocketState.CLOSED
            return
        if self._state is WebSocketState.OPEN:
            self._state = WebSocketState.CLOSING
            if not self._close_sent:
                self._close_sent = True
                # wsproto sends an empty close frame only for this exact enum member.
                close_code = CloseReason.NO_STATUS_RCVD if code is None else code
                self._write_control(CloseConnection(close_code, reason or None))
            if self._deliver_scope is not None:
                self._deliver_scope.cancel()  # the reader must not wait for the application
        try:
            with trio.move_on_after(self.control.close_timeout):
                await self._finished.wait()
        finally:
            if not self._finished.is_set():
                await self._abort()

    async def aclose(self) -> None:
        """Same as :meth:`close` with no code (``trio.abc.AsyncResource``)."""
        await self.close()

    async def _terminate(self, error: ConnectionClosed, close_code: int) -> None:
        """Fail the connection from outside the reader (keepalive): close frame, then abort."""
        if self._failure is None and self._closed is None:
            self._failure = error
        if not self._close_sent and self._state is WebSocketState.OPEN:
            self._close_sent = True
            self._write_control(CloseConnection(close_code, None))
        if self._writer is not None:
            with trio.move_on_after(min(1.0, self.control.close_timeout)):
                await self._writer.flush()
        await self._abort()

    async def _abort(self) -> None:
        """Close the TCP connection now, without a handshake."""
        if self._stream is None:
            return
        if self._deliver_scope is not None:
            self._deliver_scope.cancel()
        if self._state is not WebSocketState.CLOSED:
            if self._closed is None and self._failure is None:
                self._failure = ConnectionClosed(
                    "the connection was aborted locally", WebErrorStatus.CONNECTION_ABORTED
                )
            self._state = WebSocketState.CLOSED
        await self._close_stream()
        if self._events_in is not None:
            self._events_in.close()
        self._finished.set()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed or lost (and the socket released)."""
        await self._finished.wait()


class _PingWaiter:
    """A ping waiting for its pong."""

    __slots__ = ("answered", "done", "start")

    def __init__(self) -> None:
        self.start = trio.current_time()
        self.done = trio.Event()
        self.answered = False


class _ClientSide:
    """What wsproto's extension hooks ask of the protocol object: which side we are."""

    client = True


_CLIENT_SIDE = _ClientSide()


def _check_utf8(payload: bytes) -> None:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"data sent as UTF8 is not valid UTF-8: {exc}") from None


class _EventIterator:
    """``ws.events()``: messages, then one :class:`Closed`; lost connections raise."""

    def __init__(self, ws: MessageWebSocket) -> None:
        self._ws = ws
        self._done = False

    def __aiter__(self) -> _EventIterator:
        return self

    async def __anext__(self) -> MessageReceived | Closed:
        if self._done:
            raise StopAsyncIteration
        try:
            return await self._ws.receive()
        except ConnectionClosed:
            closed = self._ws.closed
            if closed is None or self._ws._failure is not None:
                raise
            self._done = True
            return closed
