"""The convenient ways in: ``open_message_websocket`` and ``run_message_websocket``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from .control import MessageWebSocketControl
from .message_websocket import MessageWebSocket

__all__ = ["open_message_websocket", "run_message_websocket"]


def _configured(
    control: MessageWebSocketControl | None,
    protocols: Iterable[str],
    headers: Mapping[str, str] | None,
    control_fields: dict[str, Any],
) -> MessageWebSocket:
    if control is not None and control_fields:
        raise TypeError("pass either control= or control fields as keywords, not both")
    if isinstance(protocols, str):
        raise TypeError("protocols must be a list of str, not a single string")
    # A copy: the caller's control stays untouched and reusable (even if frozen by an earlier
    # connection), and protocols= never piles up on it.
    settings = control.copy() if control is not None else MessageWebSocketControl(**control_fields)
    settings.supported_protocols = [*settings.supported_protocols, *protocols]
    ws = MessageWebSocket(settings)
    for name, value in (headers or {}).items():
        ws.set_request_header(name, value)
    return ws


@asynccontextmanager
async def open_message_websocket(
    uri: str,
    *,
    control: MessageWebSocketControl | None = None,
    protocols: Iterable[str] = (),
    headers: Mapping[str, str] | None = None,
    **control_fields: Any,
) -> AsyncIterator[MessageWebSocket]:
    """Connect to ``uri`` and yield the open socket; close it (1000, or 1011 on error) on exit.

    Takes a ready ``control`` or control fields as keywords (``max_message_size=...``).
    Exactly one exception leaves the block: a :class:`WebSocketError` for our failures, or
    the body's own exception unchanged.
    """
    ws = _configured(control, protocols, headers, control_fields)
    async with ws:
        await ws.connect(uri)
        yield ws


async def run_message_websocket(
    uri: str,
    *,
    control: MessageWebSocketControl | None = None,
    protocols: Iterable[str] = (),
    headers: Mapping[str, str] | None = None,
    task_status: trio.TaskStatus[MessageWebSocket] = trio.TASK_STATUS_IGNORED,
    **control_fields: Any,
) -> None:
    """Run a socket in a nursery you own: ``ws = await nursery.start(run_message_websocket,
    uri)``.

    ``nursery.start`` returns once the socket is open (or raises the connect error). The task
    returns once the socket is closed or lost; the outcome is seen through ``ws.receive()``.
    """
    ws = _configured(control, protocols, headers, control_fields)
    async with ws:
        await ws.connect(uri)
        task_status.started(ws)
        await ws.wait_closed()
