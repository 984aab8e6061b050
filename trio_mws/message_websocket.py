"""``MessageWebSocket``: the public socket, a facade over :class:`~trio_mws.connection.Connection`.

The socket owns a nursery (``async with ws``), runs the opening pipeline on ``connect`` and
then hands everything to the connection (reader task, write path, closing) and the keepalive
tasks. Before ``connect`` it holds the settings and request headers.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Any

import trio

from .certificates import CustomValidator
from .connection import Connection, DoneSignal
from .control import (
    MessageWebSocketControl,
    freeze_for_connect,
    unfreeze_after_failed_connect,
)
from .enums import MessageWebSocketReceiveMode, SocketMessageType, WebErrorStatus, WebSocketState
from .errors import ConnectError, ConnectionClosed
from .events import Closed, MessageReceived
from .handshake import check_request_header
from .information import MessageWebSocketInformation, attach_connection
from .keepalive import start_keepalive
from .opening import open_connection
from .protocol import ClientEngine
from .socket_io import BULK_RECEIVE_SIZE, SocketIO
from .uri import parse_uri

__all__ = ["MessageWebSocket"]

logger = logging.getLogger("trio_mws")

#: PARTIAL_MESSAGE: the largest piece delivered at once (``max_message_size`` when smaller):
#: the largest read, so that what one read brings for a message is one piece.
PIECE_LIMIT = BULK_RECEIVE_SIZE

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


class MessageWebSocket(trio.abc.AsyncResource):
    """A message-oriented WebSocket client, like Windows' ``MessageWebSocket``.

    Configure :attr:`control` and request headers, then ``async with ws:`` and
    ``await ws.connect(uri)``; or use :func:`open_message_websocket`. All operations are
    trio-native; every network failure is a :class:`WebSocketError` with a status.

    Every ``send``/``receive`` is a cancel point; it lets other tasks run whenever it waits,
    and otherwise at least every 32 calls or 1 ms (see the ``trio_mws.connection`` module).
    """

    # Slots: thousands of idle connections should cost as little memory as possible.
    __slots__ = (
        "_closed_unconnected",
        "_connect_scope",
        "_connection",
        "_done",
        "_headers",
        "_nursery",
        "_nursery_manager",
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
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._connect_scope: trio.CancelScope | None = None  # while connect() runs
        self._connection: Connection | None = None
        self._closed_unconnected = False  # close() before a connection was made
        self._done = DoneSignal()  # the socket is closed for good

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> WebSocketState:
        """CONNECTING (also before connect), OPEN, CLOSING or CLOSED."""
        if self._connection is not None:
            return self._connection.state
        return WebSocketState.CLOSED if self._closed_unconnected else WebSocketState.CONNECTING

    @property
    def closed(self) -> Closed | None:
        """The completed close handshake, or ``None`` (open, or lost without one)."""
        outcome = self._connection.outcome if self._connection is not None else None
        return outcome if isinstance(outcome, Closed) else None

    def _used(self) -> bool:
        return self._connection is not None or self._closed_unconnected

    def set_request_header(self, name: str, value: str) -> None:
        """Add a header to the upgrade request; a later call with the same name replaces it.

        Only before ``connect`` (``RuntimeError`` after). ``ValueError`` for a name that is not
        an HTTP token, a value with CR, LF or NUL, or one of the handshake's own headers.
        """
        if self._connect_scope is not None or self._used():
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
        # Leaving the block means the application reads no more: the close is prompt.
        try:
            if exc is None:
                await self._close(1000, "", done_reading=True)
            elif isinstance(exc, Exception):
                with trio.CancelScope(shield=True):
                    await self._close(1011, "", done_reading=True)
            elif self._connection is not None:  # Cancelled, KeyboardInterrupt: just let go
                await self._connection.abort()
        finally:
            await self._exit_nursery()

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
            if self._connection is not None:
                await self._connection.abort()  # never leave the socket to the garbage collector

    # -- connecting --------------------------------------------------------------------------

    async def connect(self, uri: str) -> None:
        """Open the connection to ``uri`` (absolute ``ws://``/``wss://``, no fragment).

        ``ValueError`` before any I/O for a bad URI; ``RuntimeError`` when already connecting,
        open or closed, or when not inside ``async with ws``; :class:`ConnectError` (or a
        subclass) when opening fails, after which the socket may be connected again, or
        with status OPERATION_CANCELED when ``close()`` was called meanwhile.
        """
        parsed = parse_uri(uri)
        if self._connect_scope is not None or self._used():
            raise RuntimeError("connect() on a socket that is connecting, open or closed")
        nursery = self._nursery
        if nursery is None:
            raise RuntimeError("call connect() inside `async with ws:` (it owns a nursery)")
        control = self.control
        freeze_for_connect(control)  # validates lists mutated in place: may raise ValueError
        with trio.CancelScope() as scope:
            self._connect_scope = scope
            try:  # open_connection raises network failures as ConnectError already
                opened = await open_connection(
                    parsed,
                    control,
                    dict(self._headers.values()),
                    self.server_custom_validation_requested,
                )
            except BaseException:
                unfreeze_after_failed_connect(control)
                raise
            finally:
                self._connect_scope = None
        if self._closed_unconnected:  # close() was called meanwhile
            if not scope.cancelled_caught:
                await trio.aclose_forcefully(opened.stream)
            raise ConnectError(
                f"opening {parsed} was cancelled by close()", WebErrorStatus.OPERATION_CANCELED
            )
        partial = control.receive_mode is MessageWebSocketReceiveMode.PARTIAL_MESSAGE
        engine = ClientEngine(
            max_message_size=control.max_message_size,
            partial=partial,
            deflate=opened.upgrade.deflate,
            piece_limit=PIECE_LIMIT,
        )
        info = self.information
        info.protocol = opened.upgrade.protocol
        attach_connection(info, opened.tcp.socket, opened.upgrade.head)  # type: ignore[arg-type]
        info.local_address = opened.local_address
        info.remote_address = opened.remote_address
        info.timings = opened.timings
        if opened.tls is not None:
            info.server_certificate = opened.tls.certificate
            info.server_intermediate_certificates = opened.tls.intermediates
            info.server_certificate_errors = opened.tls.errors
            info.server_certificate_error_severity = opened.tls.severity
        connection = Connection(
            SocketIO(opened.stream),
            engine,
            control=control,
            information=info,
            nursery=nursery,
            done=self._done,
        )
        self._connection = connection
        logger.debug(
            "connected to %s (protocol %s, %s)",
            opened.uri,
            info.protocol,
            "compressed" if opened.upgrade.deflate else "uncompressed",
        )
        connection.start(opened.upgrade.trailing)
        start_keepalive(connection, control, nursery)

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

    def _open_connection(self) -> Connection:
        """The connection, or the error for a socket that never had one."""
        if self._connection is not None:
            return self._connection
        if self._closed_unconnected:
            raise ConnectionClosed("the connection is closed", WebErrorStatus.CONNECTION_ABORTED)
        raise RuntimeError("the socket is not connected")

    async def send(
        self,
        data: str | bytes | bytearray | memoryview,
        message_type: SocketMessageType | None = None,
    ) -> None:
        """Send one complete message: ``str`` as UTF8, bytes as ``message_type`` or
        ``control.message_type``.

        ``ValueError`` for bytes sent as UTF8 that are not valid UTF-8. Returns once the
        message is queued for writing; concurrent senders never interleave. Cancelling a send
        is safe: the message is then either entirely sent or not at all. A cancel point, and a
        schedule point at least every 32 calls or 1 ms.
        """
        payload, kind = self._payload(data, message_type)
        if kind is SocketMessageType.UTF8 and not isinstance(data, str):
            _check_utf8(payload)
        await self._open_connection().send(kind, payload)

    async def send_nonfinal_frame(self, data: str | bytes | bytearray | memoryview) -> int:
        """Send one frame of a fragmented message with FIN=0; returns the payload length.

        The first frame's type comes from the data (``str``: UTF8, bytes:
        ``control.message_type``); later frames are continuations. Other tasks' sends wait
        until :meth:`send_final_frame`; this task may not ``send`` in between (RuntimeError).
        If the connection closes meanwhile, they raise :class:`ConnectionClosed`; if this task
        ends without the final frame, the connection fails (close code 1011).
        """
        payload, kind = self._payload(data, None)
        return await self._open_connection().send_fragment(
            kind, payload, fin=False, is_text=isinstance(data, str)
        )

    async def send_final_frame(self, data: str | bytes | bytearray | memoryview) -> int:
        """Send the frame with FIN=1 that ends a message (or a whole one-frame message)."""
        payload, kind = self._payload(data, None)
        return await self._open_connection().send_fragment(
            kind, payload, fin=True, is_text=isinstance(data, str)
        )

    @property
    def output_stream(self) -> trio.abc.SendStream:
        """A ``trio.abc.SendStream``: each ``send_all(data)`` sends one whole message of
        ``control.message_type``."""
        from .output_stream import MessageOutputStream

        return MessageOutputStream(self.send, self._wait_send_room, self.aclose)

    async def _wait_send_room(self) -> None:
        await self._open_connection().wait_send_room()

    async def ping(self, payload: bytes = b"") -> float:
        """Send a ping and wait for its pong; returns the round-trip time in seconds.

        An empty payload is replaced by 4 random bytes so the pong can be matched. Raises
        :class:`ConnectionClosed` if the connection closes first.
        """
        if not isinstance(payload, (bytes, bytearray)):
            raise TypeError("ping payload must be bytes")
        if len(payload) > 125:
            raise ValueError("ping payload is longer than 125 bytes")
        return await self._open_connection().ping(bytes(payload) or os.urandom(4))

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self) -> MessageReceived:
        """The next :class:`MessageReceived`. Cancel-safe: cancelling never loses a message.

        After the connection closes, raises :class:`ConnectionClosed` (with the close code) —
        only once every message that arrived before the close has been returned. A cancel
        point, and a schedule point at least every 32 calls or 1 ms.
        """
        return await self._open_connection().receive()

    def __aiter__(self) -> MessageWebSocket:
        return self

    async def __anext__(self) -> MessageReceived:
        """``async for``: messages until a clean close; a lost connection raises."""
        try:
            return await self.receive()
        except ConnectionClosed:
            if self.closed is not None:
                raise StopAsyncIteration from None
            raise

    def events(self) -> _EventIterator:
        """An async iterator of :class:`MessageReceived` events and, last, one :class:`Closed`.

        A connection lost without a close handshake raises :class:`ConnectionClosed` instead.
        """
        return _EventIterator(self)

    # -- closing -----------------------------------------------------------------------------

    async def close(self, code: int | None = None, reason: str = "") -> None:
        """Close the connection: send a close frame (empty when ``code`` is None), wait for
        the server's close frame and TCP close, at most ``control.close_timeout`` seconds,
        then abort the TCP connection if need be (the connection then ends with status
        TIMEOUT). Never raises for network reasons.

        Messages that arrived before the server's close frame still reach a task that keeps
        reading; close() does not wait longer than ``close_timeout`` for an application that
        does not read. Leaving ``async with ws`` closes without waiting for the application:
        messages that do not fit the queue then are discarded.

        ``ValueError`` for a code other than 1000-1003, 1007-1014, 3000-4999, or a reason
        over 123 UTF-8 bytes, before anything is sent. Idempotent; a cancelled close still
        closes (abruptly). During ``connect()``, cancels it.
        """
        check_close_arguments(code, reason)
        await self._close(code, reason, done_reading=False)

    async def _close(self, code: int | None, reason: str, *, done_reading: bool) -> None:
        connection = self._connection
        if connection is None:  # never connected, or still connecting
            await trio.lowlevel.checkpoint()
            self._closed_unconnected = True
            if self._connect_scope is not None:
                self._connect_scope.cancel()
            self._done.set()
            return
        await connection.close(code, reason, done_reading=done_reading)

    async def aclose(self) -> None:
        """Same as :meth:`close` with no code (``trio.abc.AsyncResource``)."""
        await self.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed or lost (and the socket released)."""
        await self._done.wait()


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
            if closed is None:
                raise
            self._done = True
            return closed
