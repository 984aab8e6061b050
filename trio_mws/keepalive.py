"""The keepalive task: pings with a pong deadline, and optional unsolicited pongs."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import trio
from wsproto.events import Pong

from .enums import WebErrorStatus, WebSocketState
from .errors import ConnectionClosed

if TYPE_CHECKING:
    from .message_websocket import MessageWebSocket

__all__ = ["start_keepalive"]

logger = logging.getLogger("trio_mws")


def start_keepalive(ws: MessageWebSocket, nursery: trio.Nursery) -> None:
    """Start the keepalive tasks ``ws.control`` asks for, in the socket's nursery.

    Every ``ping_interval`` seconds a ping is sent; if its pong does not arrive within
    ``ping_timeout``, the connection fails with status TIMEOUT (close code 1011) — unless the
    reader is paused because the application is not reading, which is not the server's fault.
    Unsolicited pongs (a one-way heartbeat) run in a loop of their own.
    """
    if ws.control.ping_interval:
        nursery.start_soon(_pings, ws, ws.control.ping_interval, ws.control.ping_timeout)
    if ws.control.actual_unsolicited_pong_interval:
        nursery.start_soon(_unsolicited_pongs, ws, ws.control.actual_unsolicited_pong_interval)


async def _unsolicited_pongs(ws: MessageWebSocket, interval: float) -> None:
    while ws.state is WebSocketState.OPEN:
        await trio.sleep(interval)
        if ws.state is WebSocketState.OPEN:
            ws._write_control(Pong(b""))


async def _pings(ws: MessageWebSocket, interval: float, pong_timeout: float | None) -> None:
    while True:
        await trio.sleep(interval)
        if ws.state is not WebSocketState.OPEN:
            return
        try:
            with trio.move_on_after(
                pong_timeout if pong_timeout is not None else math.inf
            ) as scope:
                await ws.ping()
        except ConnectionClosed:
            return
        if scope.cancelled_caught:
            if ws._reader_paused:
                continue
            logger.debug("keepalive: no pong within %s s", pong_timeout)
            await ws._terminate(
                ConnectionClosed(
                    f"keepalive ping timeout: no pong within {pong_timeout} s",
                    WebErrorStatus.TIMEOUT,
                    code=1006,
                    reason="",
                ),
                close_code=1011,
            )
            return
