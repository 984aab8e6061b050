"""The keepalive tasks: pings with a pong deadline, and optional unsolicited pongs."""

from __future__ import annotations

import logging
import math
import os

import trio

from .connection import Connection
from .control import MessageWebSocketControl
from .enums import WebErrorStatus, WebSocketState
from .errors import ConnectionClosed

__all__ = ["start_keepalive"]

logger = logging.getLogger("trio_mws")


def start_keepalive(
    connection: Connection, control: MessageWebSocketControl, nursery: trio.Nursery
) -> None:
    """Start the keepalive tasks ``control`` asks for, in the socket's nursery.

    Every ``ping_interval`` seconds a ping is sent; if its pong does not arrive within
    ``ping_timeout``, the connection fails with status TIMEOUT (close code 1011). Time the
    reader spent waiting for the application to take messages does not count against the
    server (the pong may be waiting in our own buffers): the deadline moves by that much.
    Unsolicited pongs (a one-way heartbeat) run in a loop of their own.
    """
    if control.ping_interval:
        nursery.start_soon(_pings, connection, control.ping_interval, control.ping_timeout)
    if control.actual_unsolicited_pong_interval:
        nursery.start_soon(_unsolicited_pongs, connection, control.actual_unsolicited_pong_interval)


async def _unsolicited_pongs(connection: Connection, interval: float) -> None:
    while connection.state is WebSocketState.OPEN:
        await trio.sleep(interval)
        connection.send_pong()


async def _pings(connection: Connection, interval: float, pong_timeout: float | None) -> None:
    while True:
        await trio.sleep(interval)
        if connection.state is not WebSocketState.OPEN:
            return
        payload = os.urandom(4)
        try:
            waiter = connection.start_ping(payload)
        except ConnectionClosed:
            return
        except ValueError:  # the application's own ping has this payload: try next time
            continue
        try:
            deadline = trio.current_time() + (
                pong_timeout if pong_timeout is not None else math.inf
            )
            paused = connection.reader_paused_seconds()
            while True:
                with trio.move_on_at(deadline):
                    await waiter.done.wait()
                if waiter.done.is_set():
                    break
                paused_now = connection.reader_paused_seconds()
                if paused_now <= paused:
                    break
                deadline += paused_now - paused  # the reader was paused: not the server's fault
                paused = paused_now
        finally:
            connection.forget_ping(payload)
        if waiter.answered:
            connection.information.latency = trio.current_time() - waiter.start
            continue
        if waiter.done.is_set():
            return  # the connection ended
        logger.debug("keepalive: no pong within %s s", pong_timeout)
        await connection.terminate(
            ConnectionClosed(
                f"keepalive ping timeout: no pong within {pong_timeout} s",
                WebErrorStatus.TIMEOUT,
                code=1006,
                reason="",
            ),
            close_code=1011,
        )
        return
