"""The HTTP upgrade stage: send the request, read the response (via h11), check the upgrade."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio

from .control import MessageWebSocketControl, is_token
from .http1 import Head, HttpExchange, invalid_response, parse_switched_head, response_of
from .information import HandshakeResponse
from .protocol.deflate import CLIENT_OFFER, DeflateParameters, parse_answer
from .uri import WebSocketURI

__all__ = ["NotUpgraded", "UpgradeResult", "check_request_header", "parse_head", "upgrade"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
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


def accept_for(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """A finished upgrade: the response head (kept raw: parsed again only if asked for), the
    negotiated options and the bytes read past it."""

    head: bytes
    protocol: str | None
    deflate: DeflateParameters | None
    trailing: bytes


@dataclass(frozen=True, slots=True)
class NotUpgraded:
    """A response that did not upgrade (redirect, authentication, error): for the caller."""

    response: HandshakeResponse
    body: bytes


def _request_target(resource: str) -> str:
    """The request target: characters outside printable ASCII percent-encoded (as browsers)."""
    if resource.isascii() and resource.isprintable() and " " not in resource:
        return resource
    return "".join(
        char if 0x21 <= ord(char) <= 0x7E else "".join(f"%{b:02X}" for b in char.encode())
        for char in resource
    )


def _host_header(uri: WebSocketURI) -> str:
    host = uri.host_header
    if host.isascii():
        return host
    return host.encode("idna").decode("ascii")  # an internationalised name: its DNS form


def build_request(
    uri: WebSocketURI,
    key: bytes,
    control: MessageWebSocketControl,
    headers: Mapping[str, str],
    deflate: bool,
) -> bytes:
    """The upgrade request as bytes (user headers were validated when they were set)."""
    lines = [
        f"GET {_request_target(uri.resource)} HTTP/1.1",
        f"Host: {_host_header(uri)}",
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
    lowered = {name.lower() for name in headers} if headers else set()
    if control.user_agent is not None and "user-agent" not in lowered:
        lines.append(f"User-Agent: {control.user_agent}")
    if control.origin is not None and "origin" not in lowered:
        lines.append(f"Origin: {control.origin}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def parse_head(head: bytes) -> HandshakeResponse:
    """Parse the raw head of a 101 response again (kept raw to keep idle connections small)."""
    return response_of(parse_switched_head(head))


def _combined(head: Head) -> dict[bytes, bytes]:
    """Each header by lower-case name, repeated fields joined with commas (RFC 9110 5.3)."""
    values: dict[bytes, bytes] = {}
    for raw_name, value in head.headers.raw_items():
        name = raw_name.lower()
        values[name] = values[name] + b"," + value if name in values else value
    return values


def _has_token(value: bytes | None, token: bytes) -> bool:
    """Whether the comma-separated ``value`` lists ``token`` (case-insensitive)."""
    if value is None:
        return False
    value = value.lower()
    return value == token or token in [item.strip() for item in value.split(b",")]


def _items(value: bytes | None) -> list[bytes]:
    """The non-empty items of a comma-separated header value."""
    if not value:
        return []
    return [item for item in (part.strip() for part in value.split(b",")) if item]


def check_upgrade(
    head: Head,
    accept: bytes,
    protocols: Sequence[str],
    deflate: bool,
) -> tuple[str | None, DeflateParameters | None]:
    """Check a 101 response (RFC 6455 section 4.1) and return the negotiated options.

    ``accept`` is the ``Sec-WebSocket-Accept`` value expected (:func:`accept_for`).
    """
    values = _combined(head)
    if not _has_token(values.get(b"upgrade"), b"websocket"):
        raise invalid_response("101 response without 'Upgrade: websocket'", head)
    if not _has_token(values.get(b"connection"), b"upgrade"):
        raise invalid_response("101 response without 'Connection: Upgrade'", head)
    if values.get(b"sec-websocket-accept") != accept:
        raise invalid_response("wrong Sec-WebSocket-Accept in the server's response", head)
    chosen = [item.decode("iso-8859-1") for item in _items(values.get(b"sec-websocket-protocol"))]
    protocol: str | None = None
    if chosen:
        if len(chosen) != 1 or chosen[0] not in protocols:
            raise invalid_response(f"server chose a subprotocol we did not offer: {chosen}", head)
        protocol = chosen[0]
    accepted: DeflateParameters | None = None
    for raw in _items(values.get(b"sec-websocket-extensions")):
        extension = raw.decode("iso-8859-1")
        if not deflate or accepted is not None:
            raise invalid_response(
                f"server accepted an extension we did not offer: {extension}", head
            )
        try:
            accepted = parse_answer(extension)
        except ValueError as exc:
            raise invalid_response(
                f"invalid Sec-WebSocket-Extensions answer: {exc}", head
            ) from None
    return protocol, accepted


async def upgrade(
    stream: trio.abc.Stream,
    uri: WebSocketURI,
    control: MessageWebSocketControl,
    headers: Mapping[str, str],
) -> UpgradeResult | NotUpgraded:
    """Send the upgrade request and read the answer.

    Returns an :class:`UpgradeResult` (a 101, checked) or, for any other status, the response
    and its body (bounded), for the caller to follow a redirect, authenticate or fail.
    """
    key = base64.b64encode(os.urandom(16))
    deflate = control.compression
    exchange = HttpExchange(stream)
    request = build_request(uri, key, control, headers, deflate)
    await exchange.send_request(request)
    accept = accept_for(key)  # while the server answers
    head = await exchange.read_head()
    if head.status_code != 101:
        return NotUpgraded(response_of(head), await exchange.read_body())
    protocol, accepted = check_upgrade(head, accept, control.supported_protocols, deflate)
    raw_head, trailing = exchange.switched()
    return UpgradeResult(raw_head, protocol, accepted, trailing)
