"""The settings of a socket (``MessageWebSocketControl``) and their value types."""

from __future__ import annotations

import math
import os
import ssl
from dataclasses import dataclass
from typing import Any

from ._version import __version__
from .enums import ChainValidationResult, MessageWebSocketReceiveMode, SocketMessageType
from .network_access import ALL_NETWORKS, NetworkAccess

__all__ = ["ClientCertificate", "MessageWebSocketControl", "PasswordCredential"]


@dataclass(frozen=True, slots=True)
class PasswordCredential:
    """A user name and password for HTTP Basic authentication."""

    #: ``str`` user name (may not contain ``:``, which Basic cannot carry).
    user_name: str
    #: ``str`` password; default ``""``.
    password: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.user_name, str) or not isinstance(self.password, str):
            raise TypeError("user_name and password must be str")
        if ":" in self.user_name:
            raise ValueError("a Basic user name cannot contain ':'")


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A certificate (and key) presented to the server for mutual TLS.

    An encrypted key without its ``password`` is a ``ValueError`` at connect, never a prompt.
    The files are read once per process for each distinct value without ``ssl_context``, and
    at each connect with one (into a copy of it, see the README).
    """

    #: Path of a PEM file with the client certificate (and its chain, and the key if
    #: ``keyfile`` is ``None``).
    certfile: str | os.PathLike[str]
    #: Path of a PEM file with the private key, or ``None`` (the default: in ``certfile``).
    keyfile: str | os.PathLike[str] | None = None
    #: Password of an encrypted private key (``str`` or ``bytes``), or ``None`` (the default)
    #: for a key that is not encrypted.
    password: str | bytes | None = None


def _positive_seconds(name: str, value: object, *, allow_none: bool) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} cannot be None")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds")
    return float(value)


def _positive_int(name: str, value: object, *, allow_none: bool) -> int | None:
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} cannot be None")
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


def _validate_proxy(value: object) -> str | None:
    if value is None or value == "auto":
        return value
    if not isinstance(value, str):
        raise TypeError('proxy must be "auto", None or a proxy URL')
    scheme = value.partition("://")[0].lower()
    if scheme not in ("http", "https", "socks5", "socks5h") or "://" not in value:
        raise ValueError("proxy URL must start with http://, https://, socks5:// or socks5h://")
    return value


class MessageWebSocketControl:
    """The settings of a :class:`MessageWebSocket`, like Windows' ``MessageWebSocketControl``.

    Every field can be set before ``connect``; once connecting starts the control is frozen and
    setting a field raises ``RuntimeError``, except ``message_type`` (applies to later
    messages) and ``outbound_buffer_size_in_bytes`` (ignored after connect, as on Windows).
    Values are checked when set (``TypeError``/``ValueError``).
    """

    __slots__ = (
        "_actual_unsolicited_pong_interval",
        "_frozen",
        "client_certificate",
        "close_timeout",
        "compression",
        "connect_timeout",
        "desired_unsolicited_pong_interval",
        "ignorable_server_certificate_errors",
        "max_message_size",
        "max_redirects",
        "message_queue_size",
        "message_type",
        "network_access",
        "origin",
        "outbound_buffer_size_in_bytes",
        "ping_interval",
        "ping_timeout",
        "proxy",
        "proxy_credential",
        "proxy_resolves_names_trusted",
        "proxy_ssl_context",
        "receive_mode",
        "server_credential",
        "ssl_context",
        "supported_protocols",
        "unix_socket_path",
        "user_agent",
    )

    #: :class:`SocketMessageType` of messages sent from bytes (``send(bytes)``,
    #: ``output_stream``, fragmented sends). Default ``BINARY``. May be changed at any time,
    #: also after connect: it applies to later messages.
    message_type: SocketMessageType
    #: :class:`MessageWebSocketReceiveMode` for every message of the connection: one event
    #: per whole message (``FULL_MESSAGE``, the default) or pieces as data arrives
    #: (``PARTIAL_MESSAGE``).
    receive_mode: MessageWebSocketReceiveMode
    #: ``int`` bytes, or ``None`` for no limit. Default 16 MiB (16,777,216). FULL_MESSAGE: a
    #: larger message (counted after decompression) fails the connection with close code 1009
    #: and :class:`MessageTooBig`. PARTIAL_MESSAGE: no message is too big; each piece holds at
    #: most this many bytes.
    max_message_size: int | None
    #: ``int`` events (messages or pieces) buffered for the application before the client
    #: stops reading from the socket (back-pressure). Default 16.
    message_queue_size: int
    #: ``list[str]`` of subprotocols offered in ``Sec-WebSocket-Protocol``, in order of
    #: preference; mutable in place before connect. Tokens are checked at connect
    #: (``ValueError``; duplicates too). Default ``[]``.
    supported_protocols: list[str]
    #: ``int`` bytes for the socket's send buffer (SO_SNDBUF), or ``None`` (the kernel's
    #: default, the default). Ignored after connect, without an error (as on Windows).
    outbound_buffer_size_in_bytes: int | None
    #: :class:`PasswordCredential` sent as HTTP Basic when the server answers 401 (also taken
    #: from the URI's userinfo), only to the origin it was given for. Default ``None``.
    server_credential: PasswordCredential | None
    #: :class:`PasswordCredential` for the proxy (also taken from the proxy URL's userinfo):
    #: HTTP Basic when an HTTP proxy answers 407, username/password (RFC 1929) when a SOCKS5
    #: proxy asks for it. Default ``None``.
    proxy_credential: PasswordCredential | None
    #: ``str`` or ``None``. ``"auto"`` (the default): from the environment (``https_proxy``,
    #: ``http_proxy``, ``all_proxy``, ``no_proxy``; loopback is never proxied). ``None``:
    #: direct. Or a proxy URL: ``http://``, ``https://``, ``socks5://`` or ``socks5h://``.
    proxy: str | None
    #: ``ssl.SSLContext`` verifying an ``https://`` proxy's certificate, or ``None`` (the
    #: default) for the system's trust store. Must keep verification on.
    proxy_ssl_context: ssl.SSLContext | None
    #: ``list[ChainValidationResult]`` of certificate errors to tolerate (``wss://`` only);
    #: the connection then succeeds with ``server_certificate_error_severity`` IGNORABLE.
    #: Default ``[]``.
    ignorable_server_certificate_errors: list[ChainValidationResult]
    #: :class:`ClientCertificate` presented for mutual TLS, or ``None`` (the default).
    client_certificate: ClientCertificate | None
    #: ``ssl.SSLContext`` for custom trust (a private CA, say), or ``None`` for the system's
    #: trust store (the default). Must keep verification on (``ValueError`` otherwise).
    ssl_context: ssl.SSLContext | None
    #: ``float`` seconds between unsolicited pongs (a one-way heartbeat), or ``None`` (the
    #: default: none sent).
    desired_unsolicited_pong_interval: float | None
    #: ``float`` seconds between keepalive pings, or ``None`` to send none. Default 20.
    ping_interval: float | None
    #: ``float`` seconds to wait for a keepalive ping's pong before failing the connection
    #: with status ``TIMEOUT``, or ``None`` to wait forever. Default 20.
    ping_timeout: float | None
    #: ``float`` seconds for the whole opening: DNS, TCP, proxy, TLS, the upgrade and every
    #: redirect. Default 60.
    connect_timeout: float
    #: ``float`` seconds ``close()`` waits for the server's close frame and TCP close before
    #: aborting the connection. Default 10.
    close_timeout: float
    #: ``bool``: offer permessage-deflate (RFC 7692). Decompressed sizes are bounded by
    #: ``max_message_size``. Default ``False``.
    compression: bool
    #: ``int`` redirects (301, 302, 303, 307, 308) followed before failing with
    #: ``REDIRECT_FAILED``; 0 follows none. Default 10. ``wss://`` to ``ws://`` is never
    #: followed.
    max_redirects: int
    #: ``str`` sent as ``User-Agent``, or ``None`` to omit the header. Default
    #: ``"trio-mws/<version>"``.
    user_agent: str | None
    #: ``str`` sent as ``Origin``, or ``None`` (the default) to omit the header.
    origin: str | None
    #: :class:`NetworkAccess`: the classes of address the client may connect to (every DNS
    #: answer tried, every redirect hop, the proxy), checked before any packet is sent.
    #: Default ``LOOPBACK | PRIVATE | INTERNET``. See :mod:`trio_mws.network_access`.
    network_access: NetworkAccess
    #: ``bool``: with a restricted ``network_access``, allow a proxy that resolves the
    #: server's name itself (HTTP ``CONNECT``, ``socks5h://``), whose address the client cannot
    #: check. Default ``False``: that combination is a ``ValueError`` at connect.
    proxy_resolves_names_trusted: bool
    #: ``str`` path of a Unix socket to connect to instead of TCP (no DNS, no proxy); the URI
    #: still gives the ``Host`` header, the resource and, for ``wss://``, the TLS server name.
    #: Default ``None``.
    unix_socket_path: str | None

    def __init__(self, **fields: Any) -> None:
        object.__setattr__(self, "_frozen", False)
        object.__setattr__(self, "_actual_unsolicited_pong_interval", None)
        defaults: dict[str, Any] = {
            "message_type": SocketMessageType.BINARY,
            "receive_mode": MessageWebSocketReceiveMode.FULL_MESSAGE,
            "max_message_size": 16 * 1024 * 1024,
            "message_queue_size": 16,
            "supported_protocols": [],
            "outbound_buffer_size_in_bytes": None,
            "server_credential": None,
            "proxy_credential": None,
            "proxy": "auto",
            "proxy_ssl_context": None,
            "ignorable_server_certificate_errors": [],
            "client_certificate": None,
            "ssl_context": None,
            "desired_unsolicited_pong_interval": None,
            "ping_interval": 20.0,
            "ping_timeout": 20.0,
            "connect_timeout": 60.0,
            "close_timeout": 10.0,
            "compression": False,
            "max_redirects": 10,
            "user_agent": f"trio-mws/{__version__}",
            "origin": None,
            "network_access": ALL_NETWORKS,
            "proxy_resolves_names_trusted": False,
            "unix_socket_path": None,
        }
        unknown = set(fields) - set(defaults)
        if unknown:
            raise TypeError(f"unknown control field(s): {', '.join(sorted(unknown))}")
        for name, value in defaults.items():  # the defaults are valid: no checks needed
            object.__setattr__(self, name, value)
        for name, value in fields.items():
            setattr(self, name, value)

    # -- validation -------------------------------------------------------------------------

    _frozen: bool
    _actual_unsolicited_pong_interval: float | None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "actual_unsolicited_pong_interval":
            raise AttributeError("actual_unsolicited_pong_interval is read-only")
        if name not in type(self).__annotations__ or name.startswith("_"):
            raise AttributeError(f"MessageWebSocketControl has no field {name!r}")
        if self._frozen and name not in ("message_type", "outbound_buffer_size_in_bytes"):
            raise RuntimeError(f"cannot change control.{name} once connect has started")
        if self._frozen and name == "outbound_buffer_size_in_bytes":
            return  # as on Windows: no effect and no error after connect
        object.__setattr__(self, name, _check(name, value))

    @property
    def actual_unsolicited_pong_interval(self) -> float | None:
        """The unsolicited pong interval in use after connect (``None``: none sent)."""
        return self._actual_unsolicited_pong_interval

    def _freeze(self) -> None:
        """Freeze the control for a connect attempt, checking the lists mutated in place."""
        for name in ("supported_protocols", "ignorable_server_certificate_errors"):
            _check(name, getattr(self, name))  # the lists may have been mutated in place
        object.__setattr__(self, "_frozen", True)
        object.__setattr__(
            self, "_actual_unsolicited_pong_interval", self.desired_unsolicited_pong_interval
        )

    def _unfreeze(self) -> None:
        """After a failed connect, the control may be changed again (as on Windows)."""
        object.__setattr__(self, "_frozen", False)
        object.__setattr__(self, "_actual_unsolicited_pong_interval", None)

    def copy(self) -> MessageWebSocketControl:
        """An unfrozen copy with the same settings (lists copied)."""
        fields = {name: getattr(self, name) for name in _field_names()}
        fields["supported_protocols"] = list(self.supported_protocols)
        fields["ignorable_server_certificate_errors"] = list(
            self.ignorable_server_certificate_errors
        )
        return MessageWebSocketControl(**fields)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in _field_names()
            if name not in ("server_credential", "proxy_credential")
        )
        return f"MessageWebSocketControl({fields})"


def freeze_for_connect(control: MessageWebSocketControl) -> None:
    """Freeze ``control`` for a connect attempt (``ValueError`` for a list mutated in place
    into something invalid); for ``MessageWebSocket.connect``."""
    control._freeze()


def unfreeze_after_failed_connect(control: MessageWebSocketControl) -> None:
    """Let ``control`` be changed again after a failed connect, as on Windows."""
    control._unfreeze()


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _field_names() -> list[str]:
    return [name for name in MessageWebSocketControl.__annotations__ if not name.startswith("_")]


def is_token(value: str) -> bool:
    """Whether ``value`` is an HTTP token (RFC 9110 section 5.6.2)."""
    return bool(value) and all(char in _TOKEN_CHARS for char in value)


def _check(name: str, value: Any) -> Any:
    if name == "message_type":
        if not isinstance(value, SocketMessageType) and value not in (0, 1):
            raise TypeError("message_type must be a SocketMessageType")
        return SocketMessageType(value)
    if name == "receive_mode":
        if not isinstance(value, MessageWebSocketReceiveMode) and value not in (0, 1):
            raise TypeError("receive_mode must be a MessageWebSocketReceiveMode")
        return MessageWebSocketReceiveMode(value)
    if name in ("max_message_size", "outbound_buffer_size_in_bytes"):
        return _positive_int(name, value, allow_none=True)
    if name == "message_queue_size":
        return _positive_int(name, value, allow_none=False)
    if name == "max_redirects":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("max_redirects must be an int")
        if value < 0:
            raise ValueError("max_redirects cannot be negative")
        return value
    if name == "supported_protocols":
        if isinstance(value, (str, bytes)):
            raise TypeError("supported_protocols must be a list of str, not a single string")
        items = list(value)
        for item in items:
            if not isinstance(item, str):
                raise TypeError("each subprotocol must be a str")
            if not is_token(item):
                raise ValueError(f"subprotocol {item!r} is not a valid HTTP token")
        if len({item.lower() for item in items}) != len(items):
            raise ValueError("duplicate subprotocol in supported_protocols")
        return value if isinstance(value, list) else items
    if name == "ignorable_server_certificate_errors":
        if isinstance(value, (str, bytes)):
            raise TypeError("ignorable_server_certificate_errors must be a list")
        items = list(value)
        for item in items:
            ChainValidationResult(item)  # ValueError for unknown values
        return value if isinstance(value, list) else items
    if name in ("server_credential", "proxy_credential"):
        if value is not None and not isinstance(value, PasswordCredential):
            raise TypeError(f"{name} must be a PasswordCredential or None")
        return value
    if name == "proxy":
        return _validate_proxy(value)
    if name == "client_certificate":
        if value is not None and not isinstance(value, ClientCertificate):
            raise TypeError("client_certificate must be a ClientCertificate or None")
        return value
    if name in ("ssl_context", "proxy_ssl_context"):
        if value is not None and not isinstance(value, ssl.SSLContext):
            raise TypeError(f"{name} must be an ssl.SSLContext or None")
        if value is not None and (
            value.verify_mode != ssl.CERT_REQUIRED or not value.check_hostname
        ):
            raise ValueError(
                f"{name} must verify certificates and host names; to tolerate specific "
                "server certificate errors use ignorable_server_certificate_errors"
            )
        return value
    if name in ("desired_unsolicited_pong_interval", "ping_interval", "ping_timeout"):
        return _positive_seconds(name, value, allow_none=True)
    if name in ("connect_timeout", "close_timeout"):
        return _positive_seconds(name, value, allow_none=False)
    if name == "network_access":
        if not isinstance(value, NetworkAccess):
            raise TypeError("network_access must be a NetworkAccess (e.g. NetworkAccess.INTERNET)")
        if not value:
            raise ValueError("network_access must allow at least one class of address")
        return value
    if name == "proxy_resolves_names_trusted":
        if not isinstance(value, bool):
            raise TypeError("proxy_resolves_names_trusted must be a bool")
        return value
    if name == "unix_socket_path":
        if value is None:
            return None
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise TypeError("unix_socket_path must be a str (or a path) or None")
        if not value or "\x00" in value:
            raise ValueError("unix_socket_path must be a non-empty path without NUL")
        return value
    if name == "compression":
        if not isinstance(value, bool):
            raise TypeError("compression must be a bool")
        return value
    if name in ("user_agent", "origin"):
        if value is not None:
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None")
            if any(char in value for char in "\r\n\x00"):
                raise ValueError(f"{name} must not contain CR, LF or NUL")
        return value
    raise AttributeError(name)  # pragma: no cover - guarded by __setattr__
