"""Shared by the examples: use the URL given on the command line, or an embedded echo server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from trio_mws.testing import serve_echo


@asynccontextmanager
async def server_url() -> AsyncIterator[str]:
    """``sys.argv[1]`` if given, else the URL of an echo server running for the block."""
    if len(sys.argv) > 1:
        yield sys.argv[1]
        return
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(serve_echo)
        yield url
        nursery.cancel_scope.cancel()
