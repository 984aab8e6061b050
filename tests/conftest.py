"""Shared fixtures. Rules for deterministic network tests:

- every server listens on 127.0.0.1 with port 0 and runs for the test only;
- time-dependent tests use ``autojump_clock`` (virtual time) or generous bounds, never sleeps
  scaled to the machine;
- peers are real: trio-websocket (``echo_url``), the ``websockets`` server
  (``websockets_url``), and raw scripted servers (``raw_server``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
from websockets.sync.server import ServerConnection, serve

from trio_mws.testing import serve_echo

from .rawserver import Handler, serve_raw


@pytest.fixture
async def echo_url(nursery: trio.Nursery) -> str:
    """trio-websocket echo server."""
    url: str = await nursery.start(serve_echo)
    return url


def _websockets_echo(connection: ServerConnection) -> None:
    for message in connection:
        connection.send(message)


@pytest.fixture(scope="session")
def websockets_url() -> Iterator[str]:
    """The ``websockets`` library's (threaded) echo server, with compression on offer."""
    server = serve(_websockets_echo, "127.0.0.1", 0, max_size=64 * 1024 * 1024)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def raw_server(nursery: trio.Nursery) -> Callable[[Handler], Any]:
    """``url = await raw_server(handler)``: a scripted server running ``handler(peer)``."""

    async def start(handler: Handler) -> str:
        url: str = await nursery.start(serve_raw, handler)
        return url

    return start
