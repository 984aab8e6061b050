"""``run_reconnecting``: keep a connection alive around a handler, reconnecting with backoff.

Why a handler and not ``async for ws in connect(...)`` (as python-websockets offers): each
connection lives in its socket's own nursery, and trio forbids ``yield`` inside a nursery or
a cancel scope — the consumer's code would run inside our nursery without being one of its
tasks, and cancellation and errors would reach the wrong frame. A handler runs inside the
``async with``, where both behave.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from .control import MessageWebSocketControl
from .enums import WebErrorStatus, WebSocketState
from .errors import ConnectionClosed, HandshakeError, WebSocketError
from .handshake import check_request_header
from .message_websocket import MessageWebSocket
from .retry import RetryPolicy
from .uri import parse_uri

__all__ = ["run_reconnecting"]

logger = logging.getLogger("trio_mws")

#: What ``run_reconnecting`` calls with each open socket.
Handler = Callable[[MessageWebSocket], Awaitable[object]]


class _HandlerSocket(MessageWebSocket):
    """The socket given to the handler: it remembers whether the handler closed it while it
    was open — a handler that closes its socket has finished, whatever the close handshake
    then does (a close that times out looks like a lost connection otherwise)."""

    __slots__ = ("closed_by_handler",)

    def __init__(self, control: MessageWebSocketControl) -> None:
        super().__init__(control)
        self.closed_by_handler = False

    async def close(self, code: int | None = None, reason: str = "") -> None:
        if self.state is WebSocketState.OPEN:
            self.closed_by_handler = True
        await super().close(code, reason)

    def ended_by_server(self) -> bool:
        """The connection was lost or closed by the server (not by the handler)."""
        return self.state is not WebSocketState.OPEN and not self.closed_by_handler


@dataclass(frozen=True)
class _Failure:
    """One attempt that ended in a way the policy judges."""

    #: What ``should_retry`` and ``next_delay`` judge, and what is raised if the answer is no.
    error: BaseException
    #: Seconds the connection stayed open; ``None`` when opening failed.
    lived: float | None


async def run_reconnecting(
    uri: str,
    handler: Handler,
    *,
    retry: RetryPolicy | None = None,
    control: MessageWebSocketControl | None = None,
    protocols: Iterable[str] = (),
    headers: Mapping[str, str] | None = None,
    **control_fields: Any,
) -> None:
    """Connect to ``uri`` and ``await handler(ws)``; reconnect, with backoff, whenever the
    connection fails for a reason that ``retry`` (default ``RetryPolicy()``) finds transient.

    - The handler returns while the socket is open (or after closing it itself): the socket
      is closed with 1000 and ``run_reconnecting`` returns.
    - Opening fails, or the connection is lost or closed by the server and the handler then
      returns or raises a :class:`WebSocketError` (or an exception group made only of them,
      from a nursery of its own): ``retry.should_retry(exc)`` decides. Yes: sleep
      ``retry.next_delay(attempt, exc)`` seconds and connect again with a fresh socket. No,
      or ``max_attempts`` / ``max_elapsed`` reached: that exception is raised — the
      handler's own if it raised one, else the socket's :class:`ConnectionClosed` (so a
      server that closes with 1000 ends the loop with ``ConnectionClosed(code=1000)``).
    - Any other exception from the handler propagates unchanged after a 1011 close; exactly
      one exception ever leaves. ``ValueError``/``TypeError`` for bad arguments, before any
      I/O. Cancellation works everywhere, the backoff sleep included.

    Each retry is logged on the ``trio_mws`` logger (WARNING) with its status and delay.
    The control (``control=`` or control fields as keywords, e.g. ``ping_interval=10``) is
    copied for each connection, so the caller's object is never frozen or changed.
    ``protocols`` and ``headers`` work as for :func:`open_message_websocket` and go with every
    connection (a bearer token, say); bad headers are a ``ValueError`` before any I/O.

    It takes a handler rather than being an async generator (``async for ws in ...``)
    because trio forbids ``yield`` inside a nursery or cancel scope, and each socket owns a
    nursery.
    """
    policy = RetryPolicy() if retry is None else retry
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, not {type(policy).__name__}")
    if not callable(handler):
        raise TypeError("handler must be an async callable taking the socket")
    if control is not None and control_fields:
        raise TypeError("pass either control= or control fields as keywords, not both")
    if control is not None and not isinstance(control, MessageWebSocketControl):
        raise TypeError("control must be a MessageWebSocketControl")
    settings = control.copy() if control is not None else MessageWebSocketControl(**control_fields)
    if isinstance(protocols, str):
        raise TypeError("protocols must be a list of str, not a single string")
    settings.supported_protocols = [*settings.supported_protocols, *protocols]
    # Checked once, here, as set_request_header checks them: bad headers fail before any I/O.
    request_headers = [check_request_header(name, value) for name, value in (headers or {}).items()]
    target = parse_uri(uri)  # bad URIs fail here, once; str(target) has no credentials
    streak_start = trio.current_time()
    attempts = 0  # in the current streak, the first included
    while True:
        attempts += 1
        failure = await _connect_and_handle(uri, handler, settings.copy(), request_headers)
        if failure is None:
            return
        now = trio.current_time()
        if failure.lived is not None and failure.lived >= policy.reset_after:
            attempts, streak_start = 1, now  # a good connection: start counting afresh
        what = _describe(failure.error)
        if not policy.should_retry(failure.error):
            logger.info("not reconnecting to %s: %s", target, what)
            raise failure.error
        if policy.max_attempts is not None and attempts >= policy.max_attempts:
            logger.warning("giving up on %s after %d attempts: %s", target, attempts, what)
            raise failure.error
        delay = _checked_delay(policy.next_delay(attempts, failure.error))
        if policy.max_elapsed is not None and now + delay - streak_start > policy.max_elapsed:
            logger.warning(
                "giving up on %s: the next attempt would start after max_elapsed (%s s): %s",
                target,
                policy.max_elapsed,
                what,
            )
            raise failure.error
        logger.warning(
            "reconnecting to %s in %.3f s (attempt %d failed: %s)", target, delay, attempts, what
        )
        await trio.sleep(delay)


async def _connect_and_handle(
    uri: str,
    handler: Handler,
    control: MessageWebSocketControl,
    headers: list[tuple[str, str]],
) -> _Failure | None:
    """One attempt: ``None`` when the handler finished, else what failed."""
    ws = _HandlerSocket(control)
    for name, value in headers:
        ws.set_request_header(name, value)
    raised: BaseException | None = None
    async with ws:  # exits with close(1000), or close(1011) for the exceptions re-raised
        try:
            await ws.connect(uri)
        except WebSocketError as exc:
            return _Failure(exc, None)
        opened_at = trio.current_time()
        try:
            await handler(ws)
        except WebSocketError as exc:
            if not ws.ended_by_server():
                raise
            raised = exc
        except BaseExceptionGroup as group:
            if not ws.ended_by_server() or group.split(WebSocketError)[1] is not None:
                raise
            raised = group
        else:
            if not ws.ended_by_server():
                return None
        lived = trio.current_time() - opened_at
    if raised is not None and not isinstance(raised, BaseExceptionGroup):
        return _Failure(raised, lived)  # the handler's own WebSocketError
    # The handler returned, or raised a group: the socket's closure stands for it.
    closure = await _closure_of(ws)
    closure.__context__ = raised
    return _Failure(closure, lived)


async def _closure_of(ws: MessageWebSocket) -> ConnectionClosed:
    """How the (now closed) connection ended, as the ``ConnectionClosed`` that ``receive()``
    raises — after the messages the handler left unread, at most a queue's worth since the
    reader has stopped."""
    for _ in range(ws.control.message_queue_size + 1):
        try:
            await ws.receive()
        except ConnectionClosed as exc:
            return exc
    closed = ws.closed  # unreachable unless the queue bound changes; still say what we know
    return ConnectionClosed(
        "the connection is closed",
        WebErrorStatus.DISCONNECTED if closed else WebErrorStatus.CONNECTION_ABORTED,
        code=closed.code if closed else 1006,
        reason=closed.reason if closed else "",
    )


def _checked_delay(delay: object) -> float:
    """``next_delay``'s answer, refused if an override returns something unusable."""
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise TypeError(f"next_delay() must return a number of seconds, not {delay!r}")
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"next_delay() must return finite seconds >= 0, not {delay!r}")
    return float(delay)


def _describe(exc: BaseException) -> str:
    """A failure in one line for the log: what happened and its status."""
    status = WebSocketError.get_status(exc).name
    if isinstance(exc, ConnectionClosed):
        reason = f" {exc.reason!r}" if exc.reason else ""
        return f"connection closed with code {exc.code}{reason}, status {status}"
    if isinstance(exc, HandshakeError) and exc.status_code is not None:
        return f"HTTP {exc.status_code}, status {status}"
    return f"{type(exc).__name__}: {exc}, status {status}"
