"""pytest fixtures for trio_mws users.

Enable them with ``pytest_plugins = ["trio_mws.pytest_plugin"]`` in your top ``conftest.py``,
or ``-p trio_mws.pytest_plugin`` on the command line or in ``addopts``.

Requirements: pytest-trio, and tests that run under trio. The fixtures are async (trio)
fixtures, so the tests that use them must be trio tests: set ``trio_mode = true`` in your
pytest configuration (``[tool.pytest.ini_options]``), or mark each such test with
``@pytest.mark.trio``. (pytest-trio refuses a trio fixture in a test that is not a trio test.)

The plugin is deliberately not registered as a ``pytest11`` entry point: such a plugin is
loaded by every pytest run of every environment where trio_mws is installed (it would import
trio_mws and trio-websocket and claim these fixture names in projects that never asked), so
it is opt-in only.

Fixtures:

- ``echo_server_url``: the ``ws://`` URL of an embedded echo server (trio-websocket), alive
  for the test.
- ``message_websocket``: a :class:`~trio_mws.MessageWebSocket` connected to that server.
- ``scripted_server``: a :class:`~trio_mws.testing.ScriptedServer` listening on 127.0.0.1 for
  the test's duration: ``peer = await scripted_server.accept_connection()``, then script it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from .entry_points import open_message_websocket
from .message_websocket import MessageWebSocket
from .testing import ScriptedServer, open_scripted_server, serve_echo

__all__ = ["echo_server_url", "message_websocket", "scripted_server"]


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


@pytest.fixture
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    """A scripted server on 127.0.0.1 (``ws://``), closed after the test."""
    async with open_scripted_server() as server:
        yield server
