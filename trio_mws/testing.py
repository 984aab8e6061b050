"""Test helpers for trio_mws users: servers on 127.0.0.1 for your test suites.

- :func:`serve_echo`: an echo server (trio-websocket's: a real, independent peer)::

      async with trio.open_nursery() as nursery:
          url = await nursery.start(serve_echo)
          async with trio_mws.open_message_websocket(url) as ws: ...

- :func:`open_scripted_server` / :func:`serve_scripted`: a server whose every move the test
  scripts (accept or reject, send, ping, close, drop, reset, stall) and that records what the
  client sent — see :mod:`trio_mws.scripted_server`.
"""

from __future__ import annotations

import logging

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from .scripted_server import (
    ClientClosed,
    ClientFrame,
    RecordedMessage,
    ScriptedConnection,
    ScriptedServer,
    UpgradeRequest,
    open_scripted_server,
    parse_client_frame,
    serve_scripted,
    server_frame,
)

__all__ = [
    "ClientClosed",
    "ClientFrame",
    "RecordedMessage",
    "ScriptedConnection",
    "ScriptedServer",
    "UpgradeRequest",
    "echo_handler",
    "open_scripted_server",
    "parse_client_frame",
    "serve_echo",
    "serve_scripted",
    "server_frame",
]

logger = logging.getLogger("trio_mws.testing")


async def echo_handler(request: WebSocketRequest) -> None:
    """Accept the upgrade (choosing the client's first subprotocol) and echo every message."""
    subprotocol = request.proposed_subprotocols[0] if request.proposed_subprotocols else None
    ws = await request.accept(subprotocol=subprotocol)
    try:
        while True:
            message = await ws.get_message()
            await ws.send_message(message)
    except ConnectionClosed:
        pass


async def serve_echo(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_message_size: int = 64 * 1024 * 1024,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an echo server until cancelled; ``nursery.start`` returns its ``ws://`` URL."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: serve_websocket(
                echo_handler,
                host,
                port,
                ssl_context=None,
                max_message_size=max_message_size,
                task_status=task_status,
            )
        )
        url = f"ws://{host}:{server.port}/"
        logger.debug("echo server listening on %s", url)
        task_status.started(url)
