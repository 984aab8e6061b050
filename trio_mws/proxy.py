"""The proxy stage of opening: choose a proxy, then tunnel through it.

``control.proxy`` is ``"auto"`` (the environment: ``https_proxy`` for wss, ``http_proxy`` for
ws, then ``all_proxy``; ``no_proxy`` honoured; loopback never proxied), ``None`` (direct) or a
``http://``, ``https://`` (TLS to the proxy first), ``socks5://`` (we resolve the name) or
``socks5h://`` (the proxy resolves it) URL. HTTP(S) proxies get a ``CONNECT`` (Basic
credentials on 407); SOCKS5 proxies RFC 1928, with RFC 1929 user/password when credentials
are given.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import struct
import urllib.parse
from dataclasses import dataclass

import trio

from .control import MessageWebSocketControl, PasswordCredential
from .enums import WebErrorStatus
from .errors import ConnectError, HandshakeError
from .http1 import HttpExchange, invalid_response, response_of
from .network_access import NetworkAccess, check_address, refusal
from .status import classify, status_for_http_code
from .timings import TimingRecorder
from .transport import open_tcp, start_proxy_tls
from .uri import WebSocketURI

__all__ = ["Proxy", "choose_proxy", "open_tunnel"]

_DEFAULT_PORTS = {"http": 8080, "https": 443, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy to tunnel through."""

    scheme: str
    host: str
    port: int
    credential: PasswordCredential | None = None


def parse_proxy(url: str, credential: PasswordCredential | None) -> Proxy:
    """Parse a proxy URL; ``credential`` (``control.proxy_credential``) wins over userinfo."""
    if "://" not in url:
        url = "http://" + url  # environment variables often omit the scheme
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"invalid proxy URL {url!r}")
    if credential is None and parts.username is not None:
        credential = PasswordCredential(
            urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
        )
    return Proxy(scheme, parts.hostname, parts.port or _DEFAULT_PORTS[scheme], credential)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    host = host.lower().rstrip(".")
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".").lstrip("*.")
        if host == name or host.endswith("." + name):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
        except ValueError:
            pass
    return False


def _environment(name: str) -> str | None:
    return os.environ.get(name.lower()) or os.environ.get(name.upper()) or None


def choose_proxy(uri: WebSocketURI, control: MessageWebSocketControl) -> Proxy | None:
    """The proxy to use for ``uri``, or ``None`` for a direct connection."""
    if control.proxy is None:
        return None
    if control.proxy != "auto":  # an explicit proxy is used for every host
        return parse_proxy(control.proxy, control.proxy_credential)
    if _is_loopback(uri.host):
        return None
    url = _environment("https_proxy" if uri.secure else "http_proxy") or _environment("all_proxy")
    if url is None or _bypassed(uri.host, uri.port, _environment("no_proxy") or ""):
        return None
    try:
        return parse_proxy(url, control.proxy_credential)
    except ValueError as exc:
        raise ConnectError(
            f"unusable proxy in the environment: {exc}", WebErrorStatus.CANNOT_CONNECT
        ) from None


def _target(uri: WebSocketURI) -> str:
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{host}:{uri.port}"


async def _send(stream: trio.abc.Stream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, OSError) as exc:
        raise ConnectError(f"connection to the proxy lost: {exc}", classify(exc)) from exc


async def _http_connect(
    stream: trio.abc.Stream,
    proxy: Proxy,
    uri: WebSocketURI,
    control: MessageWebSocketControl,
    credential: PasswordCredential | None,
) -> int:
    """Send CONNECT; return the proxy's status code (2xx means the tunnel is open)."""
    target = _target(uri).encode("idna").decode("ascii")  # UnicodeError: not a DNS name
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if credential is not None:
        token = f"{credential.user_name}:{credential.password}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(token).decode("ascii"))
    if control.user_agent is not None:
        lines.append(f"User-Agent: {control.user_agent}")
    exchange = HttpExchange(stream)
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    await exchange.send_request(request, connect=True)
    head = await exchange.read_head()
    if 200 <= head.status_code < 300:
        if exchange.switched()[1]:
            raise invalid_response("the proxy sent data before the tunnel was used", head)
        return head.status_code
    if head.status_code == 407 and proxy.credential is not None and credential is None:
        return 407  # the caller retries with the credential
    response = response_of(head)
    raise HandshakeError(
        f"proxy {proxy.host}:{proxy.port} answered CONNECT with HTTP {response.status_code}",
        status_for_http_code(response.status_code),
        status_code=response.status_code,
        headers=response.headers,
        body=await exchange.read_body(),
    )


class _SocksReader:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            try:
                data = await self.stream.receive_some(4096)
            except (trio.BrokenResourceError, OSError) as exc:
                raise ConnectError(
                    f"connection to the SOCKS proxy lost: {exc}", classify(exc)
                ) from exc
            if not data:
                raise ConnectError(
                    "the SOCKS proxy closed the connection", WebErrorStatus.CONNECTION_ABORTED
                )
            self.buffer += data
        result = bytes(self.buffer[:count])
        del self.buffer[:count]
        return result


_SOCKS_REPLIES = {
    1: ("general SOCKS server failure", WebErrorStatus.CANNOT_CONNECT),
    2: ("connection not allowed by ruleset", WebErrorStatus.CANNOT_CONNECT),
    3: ("network unreachable", WebErrorStatus.SERVER_UNREACHABLE),
    4: ("host unreachable", WebErrorStatus.SERVER_UNREACHABLE),
    5: ("connection refused", WebErrorStatus.CANNOT_CONNECT),
    6: ("TTL expired", WebErrorStatus.TIMEOUT),
    7: ("command not supported", WebErrorStatus.CANNOT_CONNECT),
    8: ("address type not supported", WebErrorStatus.CANNOT_CONNECT),
}


def _socks_invalid(what: str) -> ConnectError:
    return ConnectError(
        f"invalid SOCKS5 reply: {what}", WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE
    )


async def _socks_address(uri: WebSocketURI, remote_dns: bool, allowed: NetworkAccess) -> bytes:
    """The SOCKS5 address of the target: its name (socks5h), or an address we resolved and
    checked against ``allowed`` (socks5), or its IP address."""
    try:
        address = ipaddress.ip_address(uri.host)
    except ValueError:
        if remote_dns:
            name = uri.host.encode("idna")
            return b"\x03" + bytes([len(name)]) + name
        try:
            infos = await trio.socket.getaddrinfo(uri.host, uri.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectError(f"cannot resolve {uri.host}: {exc}", classify(exc)) from exc
        candidates = [str(info[4][0]) for info in infos]
        if not candidates:
            raise ConnectError(
                f"cannot resolve {uri.host}: no address", WebErrorStatus.HOST_NAME_NOT_RESOLVED
            ) from None
        usable = [host for host in candidates if refusal(host, allowed) is None]
        if not usable:
            check_address(candidates[0], allowed)  # raises, naming the address
        address = ipaddress.ip_address(usable[0])
    else:
        check_address(address, allowed)
    if address.version == 4:
        return b"\x01" + address.packed
    return b"\x04" + address.packed


async def _socks5(
    stream: trio.abc.Stream, proxy: Proxy, uri: WebSocketURI, allowed: NetworkAccess
) -> None:
    reader = _SocksReader(stream)
    methods = b"\x00\x02" if proxy.credential is not None else b"\x00"
    await _send(stream, b"\x05" + bytes([len(methods)]) + methods)
    version, method = await reader.exactly(2)
    if version != 5:
        raise _socks_invalid(f"version {version}")
    if method == 2 and proxy.credential is not None:
        user = proxy.credential.user_name.encode()
        password = proxy.credential.password.encode()
        await _send(stream, b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        _, status = await reader.exactly(2)
        if status != 0:
            raise HandshakeError(
                "the SOCKS proxy refused our credentials",
                WebErrorStatus.PROXY_AUTHENTICATION_REQUIRED,
            )
    elif method == 0xFF:
        raise HandshakeError(
            "the SOCKS proxy accepts none of our authentication methods",
            WebErrorStatus.PROXY_AUTHENTICATION_REQUIRED,
        )
    elif method != 0:
        raise _socks_invalid(f"method {method} was not offered")
    address = await _socks_address(uri, proxy.scheme == "socks5h", allowed)
    await _send(stream, b"\x05\x01\x00" + address + struct.pack("!H", uri.port))
    version, reply, _, kind = await reader.exactly(4)
    if version != 5:
        raise _socks_invalid(f"version {version}")
    if reply != 0:
        message, status = _SOCKS_REPLIES.get(
            reply, ("unknown error", WebErrorStatus.CANNOT_CONNECT)
        )
        raise ConnectError(f"SOCKS proxy could not connect to {_target(uri)}: {message}", status)
    if kind == 1:
        await reader.exactly(4 + 2)
    elif kind == 4:
        await reader.exactly(16 + 2)
    elif kind == 3:
        (length,) = await reader.exactly(1)
        await reader.exactly(length + 2)
    else:
        raise _socks_invalid(f"address type {kind}")


async def open_tunnel(
    proxy: Proxy,
    uri: WebSocketURI,
    control: MessageWebSocketControl,
    timings: TimingRecorder,
) -> trio.abc.Stream:
    """Connect to ``proxy`` and open a tunnel to ``uri``'s host and port."""
    credential: PasswordCredential | None = None
    while True:
        tcp = await open_tcp(proxy.host, proxy.port, control, timings)
        stream: trio.abc.Stream = tcp
        try:
            with timings.stage("proxy"):
                if proxy.scheme == "https":
                    stream = await start_proxy_tls(tcp, proxy.host, control)
                if proxy.scheme.startswith("socks5"):
                    await _socks5(stream, proxy, uri, control.network_access)
                    return stream
                status = await _http_connect(stream, proxy, uri, control, credential)
            if status != 407:
                return stream
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        # 407 and we have credentials: proxies often close after a 407, so reconnect.
        await trio.aclose_forcefully(stream)
        credential = proxy.credential
