"""Helpers shared by the messaging, sending, closing, keepalive, partial-message, streaming,
compression and HTTP tests.

They build on :mod:`tests.rawserver` (whose frames are read by the product's own scripted
server parser, ``trio_mws.testing.parse_client_frame``): a strict frame reader, a log a test
waits on for its server handler's verdict, handlers for the usual endings of a scripted
conversation, and a memory-peak probe.
"""

from __future__ import annotations

import socket
import struct
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from trio_mws.testing import ClientFrame

from .rawserver import RawPeer, close_payload, frame

if TYPE_CHECKING:
    import trio_mws

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "PROMPTLY",
    "ClientFrame",
    "ServerLog",
    "StartServer",
    "answer_close",
    "close_frame",
    "peak_memory",
    "read_frame",
    "read_until_close",
    "recording_server",
    "reset_connection",
    "state_of",
    "wait_eof",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: The ``raw_server`` fixture's type: ``url = await raw_server(handler)``.
StartServer = Callable[[Callable[[RawPeer], Awaitable[None]]], Awaitable[str]]

#: A bound, in seconds, for things that happen "promptly": generous, never machine-scaled.
PROMPTLY = 5.0


@dataclass
class ServerLog:
    """What a scripted server saw, and an event the test waits on for its verdict."""

    frames: list[ClientFrame] = field(default_factory=list)
    eof: bool | None = None  # True: clean EOF, False: reset, None: not seen
    close_code: int | None = None  # the client's close code, once read
    got_close: bool = False  # whether the client's close frame arrived
    request_extensions: str | None = None  # the request's Sec-WebSocket-Extensions
    times: dict[str, float] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)

    async def wait(self, seconds: float = PROMPTLY) -> ServerLog:
        """Wait until the handler set :attr:`done` (fails the test after ``seconds``)."""
        with trio.fail_after(seconds):
            await self.done.wait()
        return self

    def data_frames(self) -> list[ClientFrame]:
        return [f for f in self.frames if f.opcode in (OP_CONTINUATION, OP_TEXT, OP_BINARY)]

    def close_frames(self) -> list[ClientFrame]:
        return [f for f in self.frames if f.opcode == OP_CLOSE]


async def read_frame(peer: RawPeer) -> ClientFrame:
    """Read one client frame strictly (masked, minimal length encoding). ``EOFError`` at EOF."""
    received = await peer.read_client_frame()
    assert received.minimal_length, "the client did not use the minimal length encoding"
    return received


def recording_server(log: ServerLog) -> Callable[[RawPeer], Awaitable[None]]:
    """A handler that logs every client frame until the close frame, answers it and closes."""

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await answer_close(peer, log)
        log.done.set()

    return handler


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Trace allocations; on exit the list holds the peak above the starting point."""
    result: list[int] = []
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1] - base)
        if started_here:
            tracemalloc.stop()


async def read_until_close(peer: RawPeer, log: ServerLog, *, answer_pings: bool = True) -> bytes:
    """Log client frames until a close frame (answering pings unless told not to); return the
    close frame's payload."""
    while True:
        received = await read_frame(peer)
        log.frames.append(received)
        if received.opcode == OP_PING and answer_pings:
            await peer.send(frame(OP_PONG, received.payload))
        if received.opcode == OP_CLOSE:
            log.times["close"] = trio.current_time()
            return received.payload


async def wait_eof(peer: RawPeer, log: ServerLog) -> None:
    """Log frames until the client's TCP close (``log.eof``: True for EOF, False for reset)."""
    try:
        while True:
            log.frames.append(await read_frame(peer))
    except EOFError:
        log.eof = True
    except trio.BrokenResourceError:
        log.eof = False
    log.times["eof"] = trio.current_time()


async def answer_close(peer: RawPeer, log: ServerLog) -> None:
    """Read until the client's close frame, echo it, then close TCP first (RFC 6455 7.1.1)."""
    payload = await read_until_close(peer, log)
    await peer.send(frame(OP_CLOSE, payload))
    await peer.stream.aclose()


async def reset_connection(peer: RawPeer) -> None:
    """Abort the TCP connection with a RST (SO_LINGER 0, then close)."""
    peer.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await peer.stream.aclose()


def close_frame(code: int | None, reason: bytes = b"") -> bytes:
    """A server close frame (empty payload when ``code`` is None)."""
    return frame(OP_CLOSE, b"" if code is None else close_payload(code, reason))


def state_of(ws: trio_mws.MessageWebSocket) -> trio_mws.WebSocketState:
    """``ws.state``, read through a call so that type checkers do not narrow it."""
    return ws.state
