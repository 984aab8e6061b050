"""A WebSocket server whose every move a test scripts: a peer for your own test suites.

An echo server shows that the happy path works. The code that matters most in a client
application runs when the server misbehaves: it refuses the upgrade, closes with 1008, drops
the TCP connection, stops reading, stalls. :class:`ScriptedServer` lets a test play that
server, one step at a time, on a real socket on 127.0.0.1, and records what the client sent::

    async with open_scripted_server() as server:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(my_client, server.url)
            peer = await server.accept_connection()    # TCP accepted, request read
            await peer.accept(subprotocol="chat.v1")
            await peer.send_text("hello")
            assert (await peer.receive_message()).text == "hi"
            await peer.close(1008, "policy")           # or: drop(), reset(), stall()
            assert (await peer.wait_for_close()).code == 1008

The server reads from the socket only when the script asks (``receive_*``, ``wait_*``): a
script that stops asking is a server that stopped reading, and the client's sends block once
the kernel's buffers fill. Nothing here is hidden behind a timer: wrap waits in
``trio.fail_after`` as your tests need.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from .enums import SocketMessageType
from .protocol.frames import apply_mask

__all__ = [
    "ClientClosed",
    "ClientFrame",
    "RecordedMessage",
    "ScriptedConnection",
    "ScriptedServer",
    "UpgradeRequest",
    "open_scripted_server",
    "parse_client_frame",
    "serve_scripted",
    "server_frame",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Largest upgrade request head (bytes) the server reads before giving up on a client.
MAX_REQUEST_HEAD = 64 * 1024
_READ_SIZE = 64 * 1024

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """The client's HTTP upgrade request, as the server read it."""

    #: The request method (``"GET"`` for a WebSocket client).
    method: str
    #: The request target: the resource path and query, e.g. ``"/chat?room=1"``.
    target: str
    #: Every header line in order, names and values as sent (Latin-1 decoded).
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``; repeated headers are
        joined with ``", "``."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered (``Sec-WebSocket-Protocol``), in order."""
        offered = self.header("Sec-WebSocket-Protocol") or ""
        return tuple(token.strip() for token in offered.split(",") if token.strip())

    @property
    def offers_compression(self) -> bool:
        """Whether the client offered permessage-deflate (``Sec-WebSocket-Extensions``)."""
        offered = (self.header("Sec-WebSocket-Extensions") or "").lower()
        return any(
            item.split(";")[0].strip() == "permessage-deflate" for item in offered.split(",")
        )


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """One frame as the server received it from the client, unmasked."""

    #: The FIN bit: ``True`` on the last frame of a message and on every control frame.
    fin: bool
    #: The opcode: 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    opcode: int
    #: The payload, unmasked (still compressed when ``rsv1`` is set).
    payload: bytes
    #: The RSV1 bit: set on the first frame of a compressed message.
    rsv1: bool = False
    #: Whether the client masked the frame (RFC 6455 requires it; a test may check).
    masked: bool = True
    #: The RSV2 bit (no extension of ours uses it: always ``False`` from a correct client).
    rsv2: bool = False
    #: The RSV3 bit (no extension of ours uses it: always ``False`` from a correct client).
    rsv3: bool = False
    #: Whether the payload length used its shortest encoding (RFC 6455 section 5.2).
    minimal_length: bool = True

    @property
    def rsv(self) -> int:
        """The three RSV bits as an ``int``: RSV1 is 4, RSV2 is 2, RSV3 is 1."""
        return (self.rsv1 << 2) | (self.rsv2 << 1) | self.rsv3


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """A whole message the client sent, reassembled and decompressed."""

    #: ``SocketMessageType.UTF8`` for a text message, ``BINARY`` otherwise.
    message_type: SocketMessageType
    #: The payload bytes.
    data: bytes

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (``UnicodeDecodeError`` if the client sent bad text)."""
        return self.data.decode("utf-8")


class ClientClosed(Exception):
    """The client sent a close frame where the script expected a message.

    ``code`` is ``None`` for an empty close frame; ``reason`` is the frame's reason text.
    """

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"the client closed the connection (code {code}, reason {reason!r})")
        #: The close code the client sent, or ``None`` for an empty close frame.
        self.code = code
        #: The close reason the client sent ("" when none).
        self.reason = reason


def server_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """The bytes of one server frame; ``mask`` masks it (a protocol violation from a
    server), ``length`` writes another length into the header than the payload's."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    first |= (0x10 if rsv3 else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes([first, mask_bit | n])
    elif n < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is not None:
        return header + mask + apply_mask(payload, mask)
    return header + payload


def parse_client_frame(buffer: bytearray) -> ClientFrame | None:
    """Take one whole frame from the front of ``buffer`` (bytes as the client sent them) and
    return it unmasked, or ``None`` (``buffer`` untouched) while it is incomplete."""
    size = len(buffer)
    if size < 2:
        return None
    first, second = buffer[0], buffer[1]
    masked = bool(second & 0x80)
    length = second & 0x7F
    offset = 2
    minimal = True
    if length == 126:
        if size < 4:
            return None
        (length,) = struct.unpack_from("!H", buffer, 2)
        offset, minimal = 4, length >= 126
    elif length == 127:
        if size < 10:
            return None
        (length,) = struct.unpack_from("!Q", buffer, 2)
        offset, minimal = 10, length >= 65536
    end = offset + (4 if masked else 0) + length
    if size < end:
        return None
    payload = bytes(buffer[end - length : end])
    if masked:
        payload = apply_mask(payload, bytes(buffer[offset : offset + 4]))
    del buffer[:end]
    return ClientFrame(
        fin=bool(first & 0x80),
        opcode=first & 0x0F,
        payload=payload,
        rsv1=bool(first & 0x40),
        masked=masked,
        rsv2=bool(first & 0x20),
        rsv3=bool(first & 0x10),
        minimal_length=minimal,
    )


class ScriptedConnection:
    """The server's side of one client connection, driven by a test.

    Made by :meth:`ScriptedServer.accept_connection` once the TCP connection is accepted and
    the upgrade request read (:attr:`request`). Then :meth:`accept` or :meth:`reject`, and
    any of the ``send_*``, ``receive_*`` and ending calls. What the client sent is recorded in
    :attr:`frames`, :attr:`messages`, :attr:`close_code` and :attr:`close_reason`.
    """

    def __init__(self, stream: trio.abc.Stream, request: UpgradeRequest, rest: bytes) -> None:
        #: The client's upgrade request.
        self.request = request
        #: Every frame received from the client so far, control frames included, in order.
        self.frames: list[ClientFrame] = []
        #: Every whole message received from the client so far (by :meth:`receive_message`).
        self.messages: list[RecordedMessage] = []
        #: The client's close code once its close frame arrived (``None`` before, or for an
        #: empty close frame: see :attr:`close_received`).
        self.close_code: int | None = None
        #: The client's close reason once its close frame arrived.
        self.close_reason: str | None = None
        #: Whether the client's close frame has arrived.
        self.close_received = False
        #: Whether the server has sent a close frame.
        self.close_sent = False
        #: Answer the client's pings with pongs while receiving messages (default True).
        self.auto_pong = True
        self._stream = stream
        self._buffer = bytearray(rest)
        # permessage-deflate, once negotiated: one function per direction (context takeover).
        self._compress: Callable[[bytes], bytes] | None = None
        self._decompress: Callable[[bytes], bytes] | None = None

    # -- the upgrade -------------------------------------------------------------------------

    async def accept(
        self,
        *,
        subprotocol: str | None = None,
        compression: bool = False,
        extensions: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Answer 101 Switching Protocols.

        ``subprotocol`` goes into ``Sec-WebSocket-Protocol`` as given (a test may choose one
        the client never offered). ``compression=True`` negotiates permessage-deflate (the
        client must have offered it; ``ValueError`` otherwise) and makes the ``send_*`` calls
        compress on request and :meth:`receive_message` decompress. ``extensions`` writes a raw
        ``Sec-WebSocket-Extensions`` value instead (anything, valid or not; no compression is
        done). ``headers`` adds header lines.
        """
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {self.accept_key()}",
        ]
        if subprotocol is not None:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        if compression:
            if not self.request.offers_compression:
                raise ValueError("the client did not offer permessage-deflate")
            lines.append("Sec-WebSocket-Extensions: permessage-deflate")
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            decompressor = zlib.decompressobj(-15)
            # RFC 7692: a message is deflated and sync-flushed, without the 00 00 ff ff tail.
            self._compress = lambda data: (
                compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            )[:-4]
            self._decompress = lambda data: decompressor.decompress(data + b"\x00\x00\xff\xff")
        elif extensions is not None:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        await self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def reject(
        self,
        status: int = 403,
        *,
        reason: str = "Refused",
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        """Answer with an HTTP status other than 101 (and ``Content-Length``), then close."""
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        await self.send_raw(head + body)
        await self.drop()

    def accept_key(self) -> str:
        """The ``Sec-WebSocket-Accept`` value that answers the client's key."""
        key = (self.request.header("Sec-WebSocket-Key") or "").encode("latin-1")
        return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")

    # -- sending -----------------------------------------------------------------------------

    async def send_text(self, text: str, *, compress: bool = False) -> None:
        """Send one text message in one frame (compressed if asked and negotiated)."""
        await self._send_message(OP_TEXT, text.encode("utf-8"), compress)

    async def send_binary(self, data: bytes, *, compress: bool = False) -> None:
        """Send one binary message in one frame (compressed if asked and negotiated)."""
        await self._send_message(OP_BINARY, bytes(data), compress)

    async def send_fragmented(self, parts: Sequence[str | bytes]) -> None:
        """Send one message as one frame per part: text if the parts are ``str``, binary if
        they are bytes (``ValueError`` for a mix or no part)."""
        if not parts:
            raise ValueError("a fragmented message needs at least one part")
        text = isinstance(parts[0], str)
        if any(isinstance(part, str) != text for part in parts):
            raise ValueError("parts must be all str or all bytes")
        frames = []
        for index, part in enumerate(parts):
            payload = part.encode("utf-8") if isinstance(part, str) else bytes(part)
            opcode = (OP_TEXT if text else OP_BINARY) if index == 0 else OP_CONTINUATION
            frames.append(server_frame(opcode, payload, fin=index == len(parts) - 1))
        await self.send_raw(b"".join(frames))

    async def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv1: bool = False,
        rsv2: bool = False,
        rsv3: bool = False,
        mask: bytes | None = None,
        length: int | None = None,
    ) -> None:
        """Send one frame exactly as described, valid or not (see :func:`server_frame`)."""
        frame = server_frame(
            opcode, payload, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask, length=length
        )
        await self.send_raw(frame)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes to the TCP (or TLS) stream as they are."""
        await self._stream.send_all(data)

    async def ping(self, payload: bytes = b"") -> None:
        """Send a ping frame (the pong is recorded in :attr:`frames` when received)."""
        await self.send_frame(OP_PING, payload)

    async def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Send a close frame (``code=None``: an empty one). Follow with
        :meth:`wait_for_close` to read the client's answer."""
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode("utf-8")
        self.close_sent = True
        await self.send_frame(OP_CLOSE, payload)

    async def _send_message(self, opcode: int, payload: bytes, compress: bool) -> None:
        if compress:
            if self._compress is None:
                raise RuntimeError("compression was not negotiated: accept(compression=True)")
            await self.send_frame(opcode, self._compress(payload), rsv1=True)
        else:
            await self.send_frame(opcode, payload)

    # -- endings -----------------------------------------------------------------------------

    async def drop(self) -> None:
        """Close the TCP connection (FIN) without a close frame."""
        await trio.aclose_forcefully(self._stream)

    async def reset(self) -> None:
        """Reset the TCP connection (RST): the client sees ECONNRESET."""
        sock = _socket_of(self._stream)
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await trio.aclose_forcefully(self._stream)

    async def aclose(self) -> None:
        """Close the socket now (like :meth:`drop`); used when the server closes."""
        await trio.aclose_forcefully(self._stream)

    async def stall(self) -> None:
        """Do nothing, forever (until cancelled): a server that hangs."""
        await trio.sleep_forever()

    # -- receiving ---------------------------------------------------------------------------

    async def receive_frame(self) -> ClientFrame:
        """Read the client's next frame and record it. ``EOFError`` when the client closes
        the TCP connection first."""
        while (frame := parse_client_frame(self._buffer)) is None:
            await self._read_more()
        self.frames.append(frame)
        if frame.opcode == OP_CLOSE:
            self.close_received = True
            if len(frame.payload) >= 2:
                self.close_code = struct.unpack("!H", frame.payload[:2])[0]
            self.close_reason = frame.payload[2:].decode("utf-8", "replace")
        return frame

    async def receive_message(self) -> RecordedMessage:
        """Read frames until a whole data message arrived; record and return it.

        Pings are answered (unless :attr:`auto_pong` is off) and pongs skipped. A close frame
        from the client raises :class:`ClientClosed` (recorded first); ``EOFError`` when the
        client closes TCP without one.
        """
        parts: list[bytes] = []
        kind = OP_BINARY
        compressed = False
        while True:
            frame = await self.receive_frame()
            if frame.opcode == OP_CLOSE:
                raise ClientClosed(self.close_code, self.close_reason or "")
            if frame.opcode == OP_PING:
                if self.auto_pong:
                    await self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_PONG:
                continue
            if frame.opcode != OP_CONTINUATION:
                kind, compressed = frame.opcode, frame.rsv1
            parts.append(frame.payload)
            if frame.fin:
                break
        data = b"".join(parts)
        if compressed:
            if self._decompress is None:
                raise ValueError("the client compressed a message without negotiation")
            data = self._decompress(data)
        message_type = SocketMessageType.UTF8 if kind == OP_TEXT else SocketMessageType.BINARY
        message = RecordedMessage(message_type, data)
        self.messages.append(message)
        return message

    async def wait_for_close(self, *, answer: bool = True, drop: bool = True) -> ClientClosed:
        """Read (and record) until the client's close frame; answer it with a close frame of
        the same code unless the server already sent one or ``answer`` is false. Once both
        close frames have crossed, close TCP as RFC 6455 asks of a server, unless ``drop`` is
        false. Returns the close as a :class:`ClientClosed` (not raised). ``EOFError`` if TCP
        closes first."""
        while True:
            try:
                await self.receive_message()
            except ClientClosed as closed:
                if answer and not self.close_sent:
                    await self.close(closed.code, closed.reason)
                if drop and self.close_sent:
                    await self.drop()
                return closed

    async def wait_closed(self) -> bool:
        """Read and record until the client closes TCP; ``True`` for a clean FIN, ``False``
        for a reset."""
        try:
            while True:
                await self.receive_frame()
        except EOFError:
            return True
        except trio.BrokenResourceError:
            return False

    async def _read_more(self) -> None:
        try:
            data = await self._stream.receive_some(_READ_SIZE)
        except trio.ClosedResourceError:
            raise EOFError("the server side was closed") from None
        if not data:
            raise EOFError("the client closed the connection")
        self._buffer += data


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    if isinstance(stream, trio.SocketStream):
        return stream.socket
    if isinstance(stream, trio.SSLStream):
        return _socket_of(stream.transport_stream)
    return None


async def _read_request(stream: trio.abc.Stream) -> tuple[UpgradeRequest, bytes]:
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_REQUEST_HEAD:
            raise ValueError("the client's request head is too long")
        data = await stream.receive_some(_READ_SIZE)
        if not data:
            raise EOFError("the client closed before sending a request")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, _, target = lines[0].partition(" ")
    target = target.rpartition(" ")[0] or target
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return UpgradeRequest(method, target, tuple(headers)), rest


class ScriptedServer:
    """A listening scripted server on 127.0.0.1 (see :func:`open_scripted_server`)."""

    def __init__(
        self,
        listener: trio.SocketListener,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        name = listener.socket.getsockname()
        scheme = "wss" if ssl_context else "ws"
        #: The listening host (``"127.0.0.1"`` by default), or the Unix socket's path.
        self.host: str
        #: The listening TCP port (chosen by the kernel); 0 for a Unix socket.
        self.port: int
        #: The URL to give the client: ``ws://host:port/``, or ``wss://`` with TLS. For a
        #: Unix socket ``ws://localhost/`` (any host will do: the client's
        #: ``unix_socket_path`` decides where it connects).
        self.url: str
        if isinstance(name, tuple):
            self.host, self.port = str(name[0]), int(name[1])
            self.url = f"{scheme}://{self.host}:{self.port}/"
        else:
            self.host, self.port = os.fsdecode(name), 0
            self.url = f"{scheme}://localhost/"
        #: Every connection accepted so far, in order.
        self.connections: list[ScriptedConnection] = []
        self._listener = listener
        self._ssl_context = ssl_context

    async def accept_connection(self) -> ScriptedConnection:
        """Wait for the next client: accept TCP (and TLS), read its upgrade request.

        The connection's socket is closed when the server closes."""
        return await self.start_connection(await self.accept_tcp())

    async def accept_tcp(self) -> trio.SocketStream:
        """Accept the next TCP (or Unix socket) connection only (for
        :meth:`start_connection` in a task)."""
        return await self._listener.accept()

    async def start_connection(self, tcp: trio.SocketStream) -> ScriptedConnection:
        """Speak TLS (for ``wss://``) on an accepted TCP connection and read the request.

        ``EOFError`` (a client that went away, also during TLS) or ``ValueError`` (a request
        head over 64 KiB) for a client that sends none; the socket is closed then."""
        stream: trio.abc.Stream = tcp
        if self._ssl_context is not None:
            stream = trio.SSLStream(tcp, self._ssl_context, server_side=True)
        try:
            request, rest = await _read_request(stream)
        except trio.BrokenResourceError as exc:  # e.g. the client refused our certificate
            await trio.aclose_forcefully(stream)
            raise EOFError(f"the client went away before sending a request: {exc!r}") from exc
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        connection = ScriptedConnection(stream, request, rest)
        self.connections.append(connection)
        return connection

    async def aclose(self) -> None:
        """Stop listening and close every connection's socket."""
        for connection in self.connections:
            await connection.aclose()
        await trio.aclose_forcefully(self._listener)


@asynccontextmanager
async def open_scripted_server(
    *,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
    receive_buffer_size: int | None = None,
    unix_socket_path: str | None = None,
) -> AsyncIterator[ScriptedServer]:
    """Listen on ``host`` (a free port) for the duration of the ``async with`` block.

    ``ssl_context`` (a server context, e.g. from trustme) makes it a ``wss://`` server.
    ``receive_buffer_size`` sets SO_RCVBUF on accepted sockets (bytes; the kernel's default
    when ``None``): small values make a server that stops reading push back on the client
    sooner. ``unix_socket_path`` listens on a new Unix socket at that path instead of TCP
    (POSIX; the path is removed afterwards).
    """
    if unix_socket_path is not None:
        listener = await _unix_listener(unix_socket_path)
    else:
        listeners = await trio.open_tcp_listeners(0, host=host)
        listener = listeners[0]
        for extra in listeners[1:]:
            await extra.aclose()
    if receive_buffer_size is not None:
        # Set on the listening socket: accepted sockets inherit it (Linux, BSD).
        listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_size)
    server = ScriptedServer(listener, ssl_context)
    try:
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.aclose()
        if unix_socket_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(unix_socket_path)


async def _unix_listener(path: str) -> trio.SocketListener:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


ScriptHandler = Callable[[ScriptedConnection], Awaitable[None]]


async def serve_scripted(
    handler: ScriptHandler,
    *,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``handler(connection)`` for every client until cancelled; ``nursery.start``
    returns the server's URL. The handler decides everything, the upgrade included; a
    handler that returns leaves the connection's socket closed. A client that goes away
    (``EOFError``, broken stream) ends its handler quietly."""

    async def run(server: ScriptedServer, tcp: trio.SocketStream) -> None:
        try:
            connection = await server.start_connection(tcp)
        except (EOFError, ValueError, trio.BrokenResourceError):
            return  # a client that never sent a request: nothing to script
        try:
            await handler(connection)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await connection.aclose()

    async with (
        open_scripted_server(host=host, ssl_context=ssl_context) as server,
        trio.open_nursery() as nursery,
    ):
        task_status.started(server.url)
        while True:
            nursery.start_soon(run, server, await server.accept_tcp())


def random_mask() -> bytes:
    """Four random bytes, for :func:`server_frame`'s ``mask``."""
    return os.urandom(4)
