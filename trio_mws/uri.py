"""Parsing and validating the ws:// / wss:// URI: the first stage of opening."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

__all__ = ["WebSocketURI", "parse_uri"]


@dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A validated WebSocket URI, split into what the opening stages need."""

    secure: bool
    host: str
    port: int
    resource: str
    user_name: str | None = None
    password: str | None = None

    @property
    def host_header(self) -> str:
        """The value of the ``Host`` header (port omitted when it is the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        scheme = "wss" if self.secure else "ws"
        return f"{scheme}://{self.host_header}{self.resource}"


def parse_uri(uri: object) -> WebSocketURI:
    """Validate ``uri`` (absolute ws/wss, no fragment) before any I/O.

    Raises ``TypeError`` for a non-string and ``ValueError`` for anything that is not an
    absolute ``ws://`` or ``wss://`` URI with a host and without a fragment.
    """
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, not {type(uri).__name__}")
    if any(char in uri for char in "\r\n\x00 \t"):
        raise ValueError(f"invalid WebSocket URI {uri!r}: contains whitespace or control chars")
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid WebSocket URI {uri!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"invalid WebSocket URI {uri!r}: scheme must be ws or wss")
    if not parts.hostname:
        raise ValueError(f"invalid WebSocket URI {uri!r}: no host (a URI must be absolute)")
    if "#" in uri:
        raise ValueError(f"invalid WebSocket URI {uri!r}: fragments are not allowed")
    secure = scheme == "wss"
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return WebSocketURI(
        secure=secure,
        host=parts.hostname,
        port=port if port is not None else (443 if secure else 80),
        resource=resource,
        user_name=user,
        password=password,
    )


def resolve_redirect(base: WebSocketURI, location: str) -> WebSocketURI:
    """The URI a redirect's ``Location`` points to, relative to ``base``.

    ``http``/``https`` locations map to ``ws``/``wss``. Raises ``ValueError`` when the
    location is not a usable WebSocket URI.
    """
    joined = urllib.parse.urljoin(str(base).replace("ws", "http", 1), location.strip())
    scheme, sep, rest = joined.partition("://")
    mapped = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(scheme.lower())
    if mapped is None or not sep:
        raise ValueError(f"redirect to a non-WebSocket location {location!r}")
    return parse_uri(f"{mapped}://{rest}")
