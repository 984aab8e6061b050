"""The open connection: the engine, socket I/O, the reader task, the write path, closing.

Shape: one reader task in the socket's nursery reads bytes (:class:`~trio_mws.socket_io.
SocketIO`), feeds the sans-I/O engine, and puts :class:`MessageReceived` events on a bounded
memory channel. Every frame, data or control, is made by the engine and written from
``engine.data_to_send()`` by :meth:`Connection._write_output`: the one write path. The
engine's state is the connection's state; :attr:`Connection.outcome` records how it ended.

Schedule points: every ``send``/``receive`` is a cancel point (it checks for cancellation
before doing anything). A schedule point (letting other tasks run) comes whenever the call
has to wait, and otherwise at least every :data:`SCHEDULE_EVERY` calls or
:data:`SCHEDULE_AFTER` seconds, whichever comes first: a task that sends or receives in a
tight loop never starves the others, while pipelined calls skip most of the cost of a
scheduling round each.
"""

from __future__ import annotations

import codecs
import inspect
import logging
from time import perf_counter

import trio

from .control import MessageWebSocketControl
from .enums import SocketMessageType, WebErrorStatus, WebSocketState
from .errors import ConnectionClosed, MessageTooBig
from .events import Closed, MessageReceived
from .events import _set_data as set_data
from .events import _set_is_message_complete as set_complete
from .events import _set_message_type as set_type
from .information import MessageWebSocketInformation
from .protocol import (
    ClientEngine,
    CloseReceived,
    DataReceived,
    PingReceived,
    PongReceived,
    ProtocolError,
)
from .socket_io import TRANSPORT_ERRORS, SocketIO
from .status import classify

__all__ = ["SCHEDULE_AFTER", "SCHEDULE_EVERY", "Connection", "DoneSignal", "PingWaiter"]

logger = logging.getLogger("trio_mws")

#: send()/receive() calls that may complete without letting other tasks run, at most.
SCHEDULE_EVERY = 32
#: Seconds after which a send()/receive() lets other tasks run, at the latest.
SCHEDULE_AFTER = 0.001
#: Seconds given to flushing a final close frame and draining after a failure.
FLUSH_TIMEOUT = 1.0
# Builds a MessageReceived per message received without an __init__ call (see _feed).
_new_object = object.__new__


class DoneSignal:
    """Set once, when the socket is closed for good; like ``trio.Event``, but its
    ``trio.Event`` (~0.3 KiB with its set of waiters) is made only when a task waits: most
    connections are never waited on before they are done."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: trio.Event | None = None

    def is_set(self) -> bool:
        """Whether :meth:`set` was called."""
        return self._set

    def set(self) -> None:
        """Set the signal and wake every waiting task (idempotent)."""
        self._set = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Wait until the signal is set (a checkpoint even when it is set already)."""
        if self._set:
            await trio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()


class PingWaiter:
    """A ping waiting for its pong: ``start`` (trio time), ``done``, ``answered``."""

    __slots__ = ("answered", "done", "start")

    def __init__(self) -> None:
        self.start = trio.current_time()
        self.done = trio.Event()
        self.answered = False


class _Fragment:
    """The fragmented message being sent: its owner task and, for text, a UTF-8 checker."""

    __slots__ = ("checker", "owner", "watch")

    def __init__(self, owner: trio.lowlevel.Task, checker: codecs.IncrementalDecoder | None):
        self.owner = owner
        self.checker = checker
        self.watch: _OwnerExit | None = None


class _OwnerExit(trio.abc.Instrument):
    """Wakes the senders waiting behind a fragmented message when its owner task ends."""

    def __init__(self, owner: trio.lowlevel.Task, waiters: trio.lowlevel.ParkingLot) -> None:
        self._owner = owner
        self._waiters = waiters

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        """The owner ended: its waiters find the message abandoned."""
        if task is self._owner:
            self._waiters.unpark_all()


def _task_ended(task: trio.lowlevel.Task) -> bool:
    return inspect.getcoroutinestate(task.coro) == inspect.CORO_CLOSED


class Connection:
    """One open WebSocket connection (made by ``MessageWebSocket.connect``).

    The package-internal interface, used by the facade, keepalive and the output stream:
    :attr:`state`, :meth:`send`, :meth:`send_fragment`, :meth:`receive`, :meth:`start_ping`,
    :meth:`ping`, :meth:`send_pong`, :meth:`wait_send_room`, :meth:`reader_paused_seconds`,
    :meth:`terminate`, :meth:`close`, :meth:`abort`, :meth:`closed_error`, :attr:`outcome`.
    """

    __slots__ = (
        "_close_timeout",
        "_deliver_scope",
        "_discard",
        "_done",
        "_events_in",
        "_events_out",
        "_fragment",
        "_nursery",
        "_paused_since",
        "_paused_total",
        "_pings",
        "_queue_size",
        "_scheduled_at",
        "_turn",
        "_unscheduled",
        "engine",
        "information",
        "io",
        "outcome",
    )

    def __init__(
        self,
        io: SocketIO,
        engine: ClientEngine,
        *,
        control: MessageWebSocketControl,
        information: MessageWebSocketInformation,
        nursery: trio.Nursery,
        done: DoneSignal,
    ) -> None:
        #: The sans-I/O engine: its state is the connection's state.
        self.engine = engine
        #: The socket.
        self.io = io
        #: The socket's information object (counters are updated here).
        self.information = information
        #: How the connection ended: the close handshake, or the error that ended it.
        self.outcome: Closed | ConnectionClosed | None = None
        self._close_timeout = control.close_timeout
        self._queue_size = control.message_queue_size
        self._nursery = nursery
        self._done = done  # set once the socket is closed and the reader is done
        # Made when first needed (an idle connection costs less without them):
        self._events_in: trio.MemorySendChannel[MessageReceived] | None = None
        self._events_out: trio.MemoryReceiveChannel[MessageReceived] | None = None
        self._turn: trio.lowlevel.ParkingLot | None = None  # senders behind a fragment
        self._deliver_scope: trio.CancelScope | None = None
        self._discard = False  # the application is done reading (it left `async with`)
        self._fragment: _Fragment | None = None
        self._pings: dict[bytes, PingWaiter] = {}
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._unscheduled = 0
        self._scheduled_at = 0.0
        io.start(nursery, self._on_write_error)

    def start(self, trailing: bytes) -> None:
        """Start the reader task; ``trailing``: bytes that came with the handshake's answer."""
        self._nursery.start_soon(self._read_loop, trailing)

    @property
    def state(self) -> WebSocketState:
        """OPEN, CLOSING or CLOSED: the engine's state."""
        return self.engine.state

    # -- schedule points ---------------------------------------------------------------------

    async def _schedule_point(self) -> None:
        """Let other tasks run if this connection's calls have not for a while."""
        self._unscheduled += 1
        if self._unscheduled >= SCHEDULE_EVERY or perf_counter() - self._scheduled_at > (
            SCHEDULE_AFTER
        ):
            await trio.lowlevel.cancel_shielded_checkpoint()
            self._unscheduled = 0
            self._scheduled_at = perf_counter()

    # -- sending -----------------------------------------------------------------------------

    def _write_output(self) -> None:
        """Write what the engine queued: the one write path."""
        output = self.engine.data_to_send()
        if output:
            self.io.write(output)

    def check_sendable(self) -> None:
        """Raise :class:`ConnectionClosed` unless the connection is OPEN."""
        if self.engine.state is not WebSocketState.OPEN:
            raise self.closed_error()

    async def wait_send_room(self) -> None:
        """Wait until the write queue is below its high-water mark."""
        if self.io.must_wait():
            await self.io.wait_for_space()
        else:
            await trio.lowlevel.checkpoint()

    async def send(self, kind: SocketMessageType, payload: bytes) -> None:
        """Send one whole message; waits behind other tasks' fragmented messages and for room
        in the write queue. Cancel-safe: the message is either queued whole or not at all."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if (
            self.engine.state is not WebSocketState.OPEN
            or self._fragment is not None
            or self.io.must_wait()
        ):
            self.check_sendable()
            await self._wait_turn()
        self._send_frame(kind, payload, True)
        await self._schedule_point()

    async def send_fragment(
        self, kind: SocketMessageType, payload: bytes, *, fin: bool, is_text: bool
    ) -> int:
        """Send one frame of a fragmented message (``is_text``: ``payload`` came from a str,
        so it is valid UTF-8); the first frame's ``kind`` is the message's type."""
        me = trio.lowlevel.current_task()
        await trio.lowlevel.checkpoint_if_cancelled()
        self.check_sendable()
        fragment = self._fragment
        if fragment is None or fragment.owner is not me:
            if fragment is not None or self.io.must_wait():
                await self._wait_turn()
            checker = (
                codecs.getincrementaldecoder("utf-8")() if kind is SocketMessageType.UTF8 else None
            )
            fragment = _Fragment(me, checker)
        else:
            kind = SocketMessageType.BINARY if fragment.checker is None else SocketMessageType.UTF8
            if is_text and fragment.checker is None:
                raise TypeError("the message in progress is BINARY: send bytes")
            if self.io.must_wait():
                await self.io.wait_for_space()
                self.check_sendable()
        if fragment.checker is not None:
            try:
                fragment.checker.decode(b"" if is_text else payload, fin)
            except UnicodeDecodeError as exc:
                raise ValueError(f"data is not valid UTF-8: {exc}") from None
        self._send_frame(kind, payload, fin)
        if fin:
            self._end_fragment()
        else:
            self._fragment = fragment
        await self._schedule_point()
        return len(payload)

    def _send_frame(self, kind: SocketMessageType, payload: bytes, fin: bool) -> None:
        # _write_output inlined: this runs once per frame sent.
        engine = self.engine
        engine.send_data(kind, payload, fin=fin)
        self.io.write(engine.data_to_send())
        info = self.information
        info.bytes_sent = engine.bytes_sent
        if fin:
            info.messages_sent += 1

    async def _wait_turn(self) -> None:
        """Wait until no other task's fragmented message is in progress and the write queue
        has room — both at once: a fragmented message may start while we wait for room."""
        me = trio.lowlevel.current_task()
        while True:
            fragment = self._fragment
            if fragment is not None:
                if fragment.owner is me:
                    raise RuntimeError(
                        "a fragmented message is in progress in this task: "
                        "finish it with send_final_frame() first"
                    )
                if _task_ended(fragment.owner):
                    await self._abandoned()
                else:
                    await self._park_behind(fragment)
            elif self.io.must_wait():
                await self.io.wait_for_space()
            else:
                return
            self.check_sendable()

    async def _park_behind(self, fragment: _Fragment) -> None:
        if self._turn is None:
            self._turn = trio.lowlevel.ParkingLot()
        if fragment.watch is None:
            fragment.watch = _OwnerExit(fragment.owner, self._turn)
            trio.lowlevel.add_instrument(fragment.watch)
        await self._turn.park()

    def _end_fragment(self) -> None:
        fragment, self._fragment = self._fragment, None
        if fragment is not None and fragment.watch is not None:
            try:
                trio.lowlevel.remove_instrument(fragment.watch)
            except KeyError:  # pragma: no cover - trio drops an instrument that raised
                pass
        if self._turn is not None:
            self._turn.unpark_all()

    async def _abandoned(self) -> None:
        """The task that owned a fragmented message ended without its final frame: the
        message can never be completed, and nothing else may be sent before it is."""
        await self.terminate(
            ConnectionClosed(
                "a task ended in the middle of a fragmented message it was sending "
                "(send_nonfinal_frame without send_final_frame): the connection is failed",
                WebErrorStatus.CONNECTION_ABORTED,
                code=1006,
                reason="",
            ),
            close_code=1011,
        )

    def _wake_senders(self) -> None:
        """Wake every task waiting to send: the connection is no longer OPEN."""
        if self._fragment is not None:
            self._end_fragment()
        elif self._turn is not None:
            self._turn.unpark_all()

    # -- pings -------------------------------------------------------------------------------

    def start_ping(self, payload: bytes) -> PingWaiter:
        """Send a ping and return its waiter (remove it from :meth:`ping` waiters when done)."""
        self.check_sendable()
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        waiter = self._pings[payload] = PingWaiter()
        self.engine.send_ping(payload)
        self._write_output()
        return waiter

    def forget_ping(self, payload: bytes) -> None:
        """Stop waiting for the pong of ``payload``."""
        self._pings.pop(payload, None)

    async def ping(self, payload: bytes) -> float:
        """Send a ping, wait for its pong; the round-trip time in seconds."""
        await trio.lowlevel.checkpoint_if_cancelled()
        waiter = self.start_ping(payload)
        try:
            await waiter.done.wait()
        finally:
            self.forget_ping(payload)
        if not waiter.answered:
            raise self.closed_error()
        latency = trio.current_time() - waiter.start
        self.information.latency = latency
        return latency

    def send_pong(self, payload: bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat) while OPEN."""
        if self.engine.state is WebSocketState.OPEN:
            self.engine.send_pong(payload)
            self._write_output()

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

    def reader_paused_seconds(self) -> float:
        """Total seconds the reader has waited for the application to take messages."""
        paused = self._paused_total
        if self._paused_since is not None:
            paused += trio.current_time() - self._paused_since
        return paused

    # -- receiving ---------------------------------------------------------------------------

    def _make_channel(
        self,
    ) -> tuple[trio.MemorySendChannel[MessageReceived], trio.MemoryReceiveChannel[MessageReceived]]:
        assert self._events_in is None and self._events_out is None
        sender, receiver = trio.open_memory_channel[MessageReceived](self._queue_size)
        self._events_in, self._events_out = sender, receiver
        if self._done.is_set():  # nothing arrived and nothing will
            sender.close()
        return sender, receiver

    async def receive(self) -> MessageReceived:
        """The next message (or piece); :class:`ConnectionClosed` once all were taken."""
        channel = self._events_out
        if channel is None:
            channel = self._make_channel()[1]
        await trio.lowlevel.checkpoint_if_cancelled()  # before taking anything: cancel-safe
        try:
            event = channel.receive_nowait()
        except trio.WouldBlock:
            try:
                return await channel.receive()
            except trio.EndOfChannel:
                raise self.closed_error() from None
        except trio.EndOfChannel:
            raise self.closed_error() from None
        await self._schedule_point()  # shielded: the message taken is never lost
        return event

    def closed_error(self) -> ConnectionClosed:
        """A fresh :class:`ConnectionClosed` describing how the connection ended."""
        outcome = self.outcome
        if isinstance(outcome, ConnectionClosed):
            error = type(outcome)(
                str(outcome), outcome.status, code=outcome.code, reason=outcome.reason
            )
            error.__cause__ = outcome.__cause__
            return error
        if outcome is not None:
            return ConnectionClosed(
                f"the connection is closed (code {outcome.code}"
                + (f", reason {outcome.reason!r})" if outcome.reason else ")"),
                WebErrorStatus.DISCONNECTED,
                code=outcome.code,
                reason=outcome.reason,
            )
        return ConnectionClosed("the connection is closed", WebErrorStatus.CONNECTION_ABORTED)

    # -- the reader task ---------------------------------------------------------------------

    async def _read_loop(self, trailing: bytes) -> None:
        io = self.io
        try:
            if trailing:
                await self._feed(trailing)
            while self.engine.state is not WebSocketState.CLOSED:
                try:
                    data = await io.receive()
                except TRANSPORT_ERRORS as exc:
                    self._lost(exc)
                    return
                if not data:
                    self._lost(None)
                    return
                await self._feed(data)
            if isinstance(self.outcome, Closed):
                await self._wait_for_eof()
        except Exception as exc:  # a bug here must not become the nursery's exception
            logger.exception("trio_mws reader failed")
            if self.outcome is None:
                self.outcome = ConnectionClosed(f"internal error: {exc!r}", WebErrorStatus.UNKNOWN)
                self.outcome.__cause__ = exc
        finally:
            await self._finish()  # also when cancelled: it closes the socket anyway

    async def _feed(self, data: bytes) -> None:
        """Feed received bytes to the engine and act on its events. The engine hands them
        out in batches of about a MiB of data (decompression can turn a little input into a
        lot of output); each batch reaches the application before the next is made, so
        memory stays bounded whatever the compression ratio."""
        engine = self.engine
        sent_close_before = engine.close_sent
        engine.receive_data(data)
        info = self.information
        while events := engine.events_received():
            self._write_output()  # pongs, the close echo, a failure's close frame
            for event in events:
                if type(event) is DataReceived:
                    # MessageReceived(...) without the cost of a Python __init__ call
                    message = _new_object(MessageReceived)
                    set_type(message, event.message_type)
                    set_data(message, event.data)
                    if event.fin:
                        info.messages_received += 1
                        set_complete(message, True)
                    else:
                        set_complete(message, False)
                    await self._deliver(message)
                elif type(event) is PongReceived:
                    self._on_pong(event.payload)
                elif type(event) is CloseReceived:
                    logger.debug("< close %d %r", event.code, event.reason)
                    if self.outcome is None:
                        self.outcome = Closed(event.code, event.reason, sent_close_before)
                elif type(event) is ProtocolError:
                    self._on_protocol_error(event)
                elif type(event) is PingReceived and self.io.must_wait():
                    await self.io.wait_for_space()  # a ping flood with unread pongs: wait
            # The next batch is parsed by the next events_received() call: after any close
            # frame of ours sent while this batch was delivered.
            sent_close_before = engine.close_sent
        info.bytes_received = engine.bytes_received

    async def _deliver(self, event: MessageReceived) -> None:
        channel = self._events_in
        if channel is None:
            channel = self._make_channel()[0]
        try:
            channel.send_nowait(event)
            return
        except trio.WouldBlock:
            pass
        except trio.ClosedResourceError:
            return  # aborted: nobody can take it any more
        if self._discard:
            return  # the application left `async with ws`: it reads no more
        self._paused_since = trio.current_time()
        try:
            with trio.CancelScope() as scope:
                self._deliver_scope = scope
                await channel.send(event)
        except trio.ClosedResourceError:
            pass
        finally:
            self._deliver_scope = None
            self._paused_total += trio.current_time() - self._paused_since
            self._paused_since = None

    def _on_protocol_error(self, event: ProtocolError) -> None:
        if self.outcome is not None:
            return
        if event.code == 1009:
            self.outcome = MessageTooBig(
                event.message, WebErrorStatus.CONNECTION_ABORTED, code=1009, reason=event.reason
            )
        else:
            self.outcome = ConnectionClosed(
                event.message,
                WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE,
                code=event.code,
                reason=event.reason,
            )
        logger.debug("failing the connection: %s", self.outcome)

    def _lost(self, exc: BaseException | None) -> None:
        """The transport ended without a complete close handshake."""
        self.engine.receive_eof()
        if self.outcome is not None:
            return
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
        self.outcome = error
        logger.debug("connection lost: %s", error)

    async def _wait_for_eof(self) -> None:
        """After the close handshake: the server closes TCP first; wait for it, bounded."""
        try:  # most often the server's FIN came with its close frame
            if self.io.receive_nowait() == b"":
                return
        except OSError:
            return
        with trio.move_on_after(self._close_timeout):
            try:
                while await self.io.receive():
                    pass
            except TRANSPORT_ERRORS:
                pass

    async def _finish(self) -> None:
        """The reader is done: flush what is queued (a close frame, most often), briefly, then
        close the socket.

        After failing the connection with a close frame, the socket is half-closed and what
        the server still sends is discarded until it closes too (at most a second): closing
        with unread data makes the kernel send a reset, and a reset can destroy the close
        frame before the server has read it.
        """
        self.engine.receive_eof()
        if self._events_in is not None:
            self._events_in.close()
        for waiter in self._pings.values():
            waiter.done.set()  # unanswered: ping() raises ConnectionClosed
        self._wake_senders()
        io = self.io
        drain = isinstance(self.outcome, ConnectionClosed) and self.engine.close_sent
        try:
            if not io.closed and (drain or not io.idle):
                with trio.move_on_after(min(FLUSH_TIMEOUT, self._close_timeout)):
                    await io.flush()
                    if drain:
                        await self._drain()
        finally:
            await io.aclose()
            self._done.set()

    async def _drain(self) -> None:
        try:
            await self.io.send_eof()
            while await self.io.receive():
                pass
        except (*TRANSPORT_ERRORS, trio.BusyResourceError):
            pass

    def _on_write_error(self, exc: BaseException) -> None:
        if self.outcome is None and self.engine.state is not WebSocketState.CLOSED:
            status = classify(exc)
            if status is WebErrorStatus.UNKNOWN:
                status = WebErrorStatus.CONNECTION_ABORTED
            error = ConnectionClosed(f"the connection was lost while writing: {exc}", status)
            error.__cause__ = exc
            self.outcome = error
        self.engine.receive_eof()
        self._wake_senders()
        self._nursery.start_soon(self.io.aclose)  # the reader sees it and finishes

    # -- closing -----------------------------------------------------------------------------

    async def close(self, code: int | None, reason: str, *, done_reading: bool) -> None:
        """Send a close frame (if still OPEN) and wait for the connection to end, at most
        ``close_timeout`` seconds; then abort it (status TIMEOUT).

        Messages that arrived before the server's close frame still reach a task that keeps
        reading. ``done_reading``: the application reads no more (it left ``async with``),
        so messages that do not fit the queue are discarded and the handshake is prompt.
        """
        if self._done.is_set():  # closed already: nothing to wait for
            await trio.lowlevel.checkpoint()
            return
        if done_reading:
            self._discard = True
            if self._deliver_scope is not None:
                self._deliver_scope.cancel()
        if self.engine.state is WebSocketState.OPEN:
            self.engine.send_close(code, reason)
            self._write_output()
            self._wake_senders()
        timed_out = False
        try:
            with trio.move_on_after(self._close_timeout) as scope:
                await self._done.wait()
            timed_out = scope.cancelled_caught
        finally:
            if not self._done.is_set():
                error = None
                if timed_out:
                    error = ConnectionClosed(
                        f"no close handshake within close_timeout ({self._close_timeout} s)",
                        WebErrorStatus.TIMEOUT,
                    )
                await self.abort(error)

    async def terminate(self, error: ConnectionClosed, close_code: int) -> None:
        """Fail the connection from outside the reader (keepalive, an abandoned fragmented
        message): record ``error``, send a close frame, flush it briefly, then abort."""
        if self.outcome is None:
            self.outcome = error
        logger.debug("failing the connection: %s", error)
        if self.engine.state is WebSocketState.OPEN:
            self.engine.fail(close_code)
            self._write_output()
        self._wake_senders()
        with trio.move_on_after(min(FLUSH_TIMEOUT, self._close_timeout)):
            await self.io.flush()
        await self.abort()

    async def abort(self, error: ConnectionClosed | None = None) -> None:
        """Close the TCP connection now, without a handshake. Messages already queued can
        still be received; then :class:`ConnectionClosed` (``error``, or CONNECTION_ABORTED)."""
        if self._deliver_scope is not None:
            self._deliver_scope.cancel()
        if self.outcome is None and self.engine.state is not WebSocketState.CLOSED:
            self.outcome = error or ConnectionClosed(
                "the connection was aborted locally", WebErrorStatus.CONNECTION_ABORTED
            )
        self.engine.receive_eof()
        self._wake_senders()
        await self.io.aclose()
        if self._events_in is not None:
            self._events_in.close()
        self._done.set()
