"""Raw scripted WebSocket servers for wire-level and hostile tests.

A test writes the server's side byte by byte: ``RawPeer`` reads the upgrade request, answers
it (or not), sends hand-made frames and reads the client's masked frames.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable

import trio

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Handler = Callable[["RawPeer"], Awaitable[None]]


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """A server frame (unmasked unless ``mask``); ``length`` overrides the length field."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes([first, mask_bit | n])
    elif n < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return header + mask + payload
    return header + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    """The payload of a close frame."""
    return struct.pack("!H", code) + reason


class RawPeer:
    """The server side of one TCP connection, scripted by a test."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.request_head = b""

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        self.buffer += data
        return bool(data)

    async def read_request(self) -> bytes:
        """Read the upgrade request head (without the blank line)."""
        while b"\r\n\r\n" not in self.buffer:
            if not await self._fill():
                raise EOFError("client closed before sending a request")
        end = self.buffer.index(b"\r\n\r\n")
        self.request_head = bytes(self.buffer[:end])
        del self.buffer[: end + 4]
        return self.request_head

    def request_header(self, name: str) -> str | None:
        """A header of the request (case-insensitive)."""
        for line in self.request_head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def accept_value(self) -> str:
        key = (self.request_header("Sec-WebSocket-Key") or "").encode()
        return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()

    async def accept(self, extra: str = "", *, after: bytes = b"") -> None:
        """Read the request and answer 101 (``extra``: more header lines, CRLF-terminated)."""
        await self.read_request()
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {self.accept_value()}\r\n{extra}\r\n"
        )
        await self.stream.send_all(response.encode() + after)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def read_frame(self) -> tuple[bool, int, bytes]:
        """Read one client frame: (fin, opcode, unmasked payload). EOFError at EOF."""

        async def need(n: int) -> None:
            while len(self.buffer) < n:
                if not await self._fill():
                    raise EOFError("client closed the connection")

        await need(2)
        fin = bool(self.buffer[0] & 0x80)
        opcode = self.buffer[0] & 0x0F
        masked = bool(self.buffer[1] & 0x80)
        n = self.buffer[1] & 0x7F
        offset = 2
        if n == 126:
            await need(4)
            (n,) = struct.unpack("!H", self.buffer[2:4])
            offset = 4
        elif n == 127:
            await need(10)
            (n,) = struct.unpack("!Q", self.buffer[2:10])
            offset = 10
        assert masked, "client frames must be masked"
        await need(offset + 4 + n)
        key = bytes(self.buffer[offset : offset + 4])
        raw = bytes(self.buffer[offset + 4 : offset + 4 + n])
        del self.buffer[: offset + 4 + n]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(raw))
        return fin, opcode, payload

    async def read_close(self) -> int | None:
        """Read frames until a close frame; return its code (None when empty)."""
        while True:
            _fin, opcode, payload = await self.read_frame()
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if payload else None

    async def wait_eof(self) -> bool:
        """Discard input until the client closes TCP; True if it did (False on reset)."""
        try:
            while await self._fill():
                self.buffer.clear()
        except trio.BrokenResourceError:
            return False
        return True


async def serve_raw(handler: Handler, *, task_status: trio.TaskStatus[str]) -> None:
    """Listen on 127.0.0.1 and run ``handler`` for each connection; reports the ws:// URL."""

    async def run(stream: trio.SocketStream) -> None:
        try:
            await handler(RawPeer(stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, run, listeners)
        task_status.started(f"ws://127.0.0.1:{port}/")
