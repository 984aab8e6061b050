"""The HTTP upgrade stage: build the request, read the response, check the upgrade."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio

from .control import MessageWebSocketControl, is_token
from .enums import WebErrorStatus
from .errors import ConnectError, HandshakeError
from .information import HandshakeResponse
from .protocol.deflate import CLIENT_OFFER, DeflateParameters, parse_answer
from .status import classify
from .transport import direct_descriptor
from .uri import WebSocketURI

__all__ = ["UpgradeResult", "check_request_header", "read_response", "upgrade"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEAD = 64 * 1024  # bytes of status line and headers we accept
_MAX_BODY = 64 * 1024  # bytes of an error response's body we keep
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-accept",
    }
)


def check_request_header(name: object, value: object) -> tuple[str, str]:
    """Validate a user request header as ``set_request_header`` documents."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("header name and value must be str")
    if not is_token(name):
        raise ValueError(f"header name {name!r} is not an HTTP token")
    if any(char in value for char in "\r\n\x00"):
        raise ValueError(f"header {name!r} value contains CR, LF or NUL")
    lowered = name.lower()
    if lowered in _RESERVED_HEADERS or lowered.startswith("sec-websocket-"):
        raise ValueError(f"header {name!r} is set by the WebSocket handshake itself")
    return name, value.strip(" \t")


def accept_for(key: bytes) -> str:
    """The ``Sec-WebSocket-Accept`` value a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """A finished upgrade: the response head (kept raw: parsed again only if asked for), the
    negotiated options and the bytes read past it."""

    head: bytes
    protocol: str | None
    deflate: DeflateParameters | None
    trailing: bytes


def build_request(
    uri: WebSocketURI,
    key: bytes,
    control: MessageWebSocketControl,
    headers: Mapping[str, str],
    deflate: bool,
) -> bytes:
    """The upgrade request as bytes."""
    lines = [
        f"GET {uri.resource} HTTP/1.1",
        f"Host: {uri.host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode('ascii')}",
        "Sec-WebSocket-Version: 13",
    ]
    if control.supported_protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(control.supported_protocols)}")
    if deflate:
        lines.append(f"Sec-WebSocket-Extensions: {CLIENT_OFFER}")
    # A request header set by the user replaces the control's User-Agent / Origin.
    if control.user_agent is not None and "user-agent" not in _lowered(headers):
        lines.append(f"User-Agent: {control.user_agent}")
    if control.origin is not None and "origin" not in _lowered(headers):
        lines.append(f"Origin: {control.origin}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _lowered(headers: Mapping[str, str]) -> set[str]:
    return {name.lower() for name in headers}


def _invalid(message: str, response: HandshakeResponse | None = None) -> HandshakeError:
    return HandshakeError(
        message,
        WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE,
        status_code=response.status_code if response else None,
        headers=response.headers if response else (),
    )


def parse_head(head: bytes) -> HandshakeResponse:
    """Parse a status line and headers (without the final blank line)."""
    try:
        text = head.decode("iso-8859-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes anything
        raise _invalid("response head is not text") from exc
    status_line, *header_lines = text.split("\r\n")
    version, _, rest = status_line.partition(" ")
    code_text, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code_text) != 3 or not code_text.isdigit():
        raise _invalid(f"malformed HTTP status line {status_line[:100]!r}")
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not is_token(name):
            raise _invalid(f"malformed HTTP header line {line[:100]!r}")
        headers.append((name, value.strip(" \t")))
    return HandshakeResponse(int(code_text), reason, tuple(headers))


async def _read_direct(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            pass
        await trio.lowlevel.wait_readable(fd)


async def _send_request(stream: trio.abc.Stream, request: bytes) -> None:
    """Send the request; on a fresh plain socket it fits the kernel's buffer: write it now."""
    sent = 0
    fd = direct_descriptor(stream)
    if fd is not None:
        try:
            sent = os.write(fd, request)
        except BlockingIOError:
            sent = 0
    if sent < len(request):
        await stream.send_all(request[sent:])


class _Reader:
    """Buffered reads from the stream for the HTTP response."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.fd = direct_descriptor(stream)
        self.buffer = bytearray()
        self.eof = False
        self.head = b""

    async def fill(self) -> None:
        try:
            if self.fd is None:
                data = await self.stream.receive_some(65536)
            else:
                data = await _read_direct(self.fd)
        except (trio.BrokenResourceError, OSError) as exc:
            raise ConnectError(
                f"connection lost during the handshake: {exc}", classify(exc)
            ) from exc
        if not data:
            self.eof = True
        self.buffer += data

    async def read_head(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > _MAX_HEAD:
                raise _invalid("response headers too large")
            if self.eof:
                if not self.buffer:
                    raise _invalid("server closed the connection without answering")
                raise _invalid("server closed the connection in the middle of the response")
            await self.fill()

    async def read_body(self, response: HandshakeResponse) -> bytes:
        """Read an error response's body, keeping at most 64 KiB of it."""
        length_text = response.get("content-length")
        if (response.get("transfer-encoding") or "").lower().endswith("chunked"):
            return await self._read_chunked()
        if length_text is not None:
            limit = min(int(length_text) if length_text.strip().isdigit() else 0, _MAX_BODY)
        elif response.status_code in (204, 304) or 100 <= response.status_code < 200:
            return b""
        else:
            limit = _MAX_BODY  # delimited by the connection's end
        while len(self.buffer) < limit and not self.eof:
            await self.fill()
        return bytes(self.buffer[:limit])

    async def _read_chunked(self) -> bytes:
        body = bytearray()
        while len(body) < _MAX_BODY:
            while b"\r\n" not in self.buffer and not self.eof:
                await self.fill()
            line, sep, _ = bytes(self.buffer).partition(b"\r\n")
            if not sep:
                break
            size_text = line.split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                break
            del self.buffer[: len(line) + 2]
            if size == 0:
                break
            while len(self.buffer) < size + 2 and not self.eof:
                await self.fill()
            body += self.buffer[:size]
            del self.buffer[: size + 2]
        return bytes(body[:_MAX_BODY])


async def read_response(stream: trio.abc.Stream) -> tuple[HandshakeResponse, _Reader]:
    """Read and parse the response head; the reader keeps what follows it."""
    reader = _Reader(stream)
    reader.head = await reader.read_head()
    return parse_head(reader.head), reader


def _header_values(response: HandshakeResponse, name: str) -> list[str]:
    lowered = name.lower()
    values: list[str] = []
    for key, value in response.headers:
        if key.lower() == lowered:
            values.extend(item.strip() for item in value.split(",") if item.strip())
    return values


def check_upgrade(
    response: HandshakeResponse,
    key: bytes,
    protocols: Sequence[str],
    deflate: bool,
) -> tuple[str | None, DeflateParameters | None]:
    """Check a 101 response (RFC 6455 section 4.1) and return the negotiated options."""
    if "websocket" not in [value.lower() for value in _header_values(response, "upgrade")]:
        raise _invalid("101 response without 'Upgrade: websocket'", response)
    if "upgrade" not in [value.lower() for value in _header_values(response, "connection")]:
        raise _invalid("101 response without 'Connection: Upgrade'", response)
    if response.get("sec-websocket-accept") != accept_for(key):
        raise _invalid("wrong Sec-WebSocket-Accept in the server's response", response)
    chosen = _header_values(response, "sec-websocket-protocol")
    protocol: str | None = None
    if chosen:
        if len(chosen) != 1 or chosen[0] not in protocols:
            raise _invalid(f"server chose a subprotocol we did not offer: {chosen}", response)
        protocol = chosen[0]
    extensions = _header_values(response, "sec-websocket-extensions")
    accepted: DeflateParameters | None = None
    for extension in extensions:
        if not deflate or accepted is not None:
            raise _invalid(f"server accepted an extension we did not offer: {extension}", response)
        try:
            accepted = parse_answer(extension)
        except ValueError as exc:
            raise _invalid(f"invalid Sec-WebSocket-Extensions answer: {exc}", response) from None
    return protocol, accepted


async def upgrade(
    stream: trio.abc.Stream,
    uri: WebSocketURI,
    control: MessageWebSocketControl,
    headers: Mapping[str, str],
) -> tuple[HandshakeResponse, UpgradeResult | bytes]:
    """Send the upgrade request and read the answer.

    Returns the response and either an :class:`UpgradeResult` (101, checked) or the body of
    a non-101 response, for the caller to follow a redirect, authenticate or fail.
    """
    key = base64.b64encode(os.urandom(16))
    deflate = control.compression
    request = build_request(uri, key, control, headers, deflate)
    try:
        await _send_request(stream, request)
    except (trio.BrokenResourceError, OSError) as exc:
        raise ConnectError(f"connection lost sending the handshake: {exc}", classify(exc)) from exc
    response, reader = await read_response(stream)
    if response.status_code != 101:
        return response, await reader.read_body(response)
    protocol, accepted = check_upgrade(response, key, control.supported_protocols, deflate)
    return response, UpgradeResult(reader.head, protocol, accepted, bytes(reader.buffer))
