"""Helpers shared by the messaging, sending, closing, keepalive and partial-message tests.

They build on :mod:`tests.rawserver`: a faster frame reader for the scripted server (the
stock one unmasks byte by byte, too slow for megabytes), a way for a test to wait for its
server handler's verdict, and handlers for the usual endings of a scripted conversation.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

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
    "read_frame",
    "read_until_close",
    "reset_connection",
    "state_of",
    "unmask",
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


@dataclass(frozen=True)
class ClientFrame:
    """One frame as the scripted server received it (unmasked)."""

    fin: bool
    opcode: int
    payload: bytes
    rsv: int = 0


@dataclass
class ServerLog:
    """What a scripted server saw, and an event the test waits on for its verdict."""

    frames: list[ClientFrame] = field(default_factory=list)
    eof: bool | None = None  # True: clean EOF, False: reset, None: not seen
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


def unmask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``key``, fast enough for megabytes."""
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return value.to_bytes(len(payload), "little")


async def read_frame(peer: RawPeer) -> ClientFrame:
    """Read one client frame strictly (masked, minimal length encoding). ``EOFError`` at EOF."""

    async def need(n: int) -> None:
        while len(peer.buffer) < n:
            data = await peer.stream.receive_some(1 << 20)
            if not data:
                raise EOFError("client closed the connection")
            peer.buffer += data

    await need(2)
    first, second = peer.buffer[0], peer.buffer[1]
    assert second & 0x80, "client frames must be masked"
    n = second & 0x7F
    offset = 2
    if n == 126:
        await need(4)
        (n,) = struct.unpack("!H", peer.buffer[2:4])
        assert n >= 126, "non-minimal 16-bit length"
        offset = 4
    elif n == 127:
        await need(10)
        (n,) = struct.unpack("!Q", peer.buffer[2:10])
        assert n >= 65536, "non-minimal 64-bit length"
        offset = 10
    await need(offset + 4 + n)
    key = bytes(peer.buffer[offset : offset + 4])
    payload = unmask(bytes(peer.buffer[offset + 4 : offset + 4 + n]), key)
    del peer.buffer[: offset + 4 + n]
    return ClientFrame(bool(first & 0x80), first & 0x0F, payload, (first >> 4) & 0x7)


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
