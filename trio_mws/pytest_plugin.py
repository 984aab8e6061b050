"""pytest fixtures for trio_mws users (enable with ``pytest_plugins = ["trio_mws.pytest_plugin"]``).

Needs pytest-trio. Fixtures:

- ``echo_server_url``: the ``ws://`` URL of an embedded echo server (trio-websocket), alive
  for the test.
- ``message_websocket``: a :class:`~trio_mws.MessageWebSocket` connected to that server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from .entry_points import open_message_websocket
from .message_websocket import MessageWebSocket
from .testing import serve_echo

__all__ = ["echo_server_url", "message_websocket"]


@pytest.fixture
async def echo_server_url(nursery: trio.Nursery) -> str:
    """The URL of an echo server on 127.0.0.1 that runs for the test's duration."""
    url: str = await nursery.start(serve_echo)
    return url


@pytest.fixture
async def message_websocket(echo_server_url: str) -> AsyncIterator[MessageWebSocket]:
    """A socket connected to the echo server, closed after the test."""
    async with open_message_websocket(echo_server_url) as ws:
        yield ws
