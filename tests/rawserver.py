"""Raw scripted WebSocket servers for wire-level and hostile tests.

A test writes the server's side byte by byte: ``RawPeer`` reads the upgrade request, answers
it (or not), sends hand-made frames and reads the client's masked frames.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import cast

import trio

from trio_mws.testing import ClientFrame, parse_client_frame, server_frame

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
    """A server frame (unmasked unless ``mask``); ``length`` overrides the length field;
    ``rsv`` holds the three RSV bits (4 is RSV1). ``trio_mws.testing.server_frame`` makes it."""
    return server_frame(
        opcode,
        payload,
        fin=fin,
        rsv1=bool(rsv & 4),
        rsv2=bool(rsv & 2),
        rsv3=bool(rsv & 1),
        mask=mask,
        length=length,
    )


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

    async def read_client_frame(self) -> ClientFrame:
        """Read one client frame (unmasked; see ``trio_mws.testing.parse_client_frame``),
        asserting that the client masked it. ``EOFError`` at EOF."""
        while (received := parse_client_frame(self.buffer)) is None:
            if not await self._fill():
                raise EOFError("client closed the connection")
        assert received.masked, "client frames must be masked"
        return received

    async def read_frame(self) -> tuple[bool, int, bytes]:
        """Read one client frame: (fin, opcode, unmasked payload). EOFError at EOF."""
        received = await self.read_client_frame()
        return received.fin, received.opcode, received.payload

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


async def serve_raw(
    handler: Handler,
    *,
    tls: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on 127.0.0.1 and run ``handler`` for each connection; reports the URL.

    With ``tls`` (a server context, or a function giving one per connection), each
    connection speaks TLS first and the URL is ``wss://``; ``peer.stream`` is then the
    ``trio.SSLStream``. A client that rejects the certificate makes the server's handshake
    fail: that connection is dropped quietly.
    """

    async def run(tcp: trio.SocketStream) -> None:
        stream: trio.abc.Stream = tcp
        try:
            if tls is not None:
                context = tls if isinstance(tls, ssl.SSLContext) else tls()
                stream = tls_stream = trio.SSLStream(tcp, context, server_side=True)
                await tls_stream.do_handshake()
            await handler(RawPeer(cast(trio.SocketStream, stream)))
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, run, listeners)
        task_status.started(f"{'ws' if tls is None else 'wss'}://127.0.0.1:{port}/")
