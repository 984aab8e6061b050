"""The opening pipeline: URI -> TCP -> TLS -> HTTP upgrade (redirects, auth) -> open.

Each stage is a small function of its own module; this one runs them in order under
``connect_timeout`` and handles what crosses stages: redirects and authentication.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
from dataclasses import dataclass

import trio

from .certificates import CustomValidator
from .control import MessageWebSocketControl, PasswordCredential
from .enums import WebErrorStatus
from .errors import ConnectError, HandshakeError
from .handshake import NotUpgraded, UpgradeResult, upgrade
from .network_access import ALL_NETWORKS, check_address
from .proxy import Proxy, choose_proxy, open_tunnel
from .status import classify, status_for_http_code, status_for_os_error
from .timings import ConnectTimings, TimingRecorder
from .transport import TlsInfo, open_tcp, socket_addresses, socket_stream_of, start_tls
from .uri import WebSocketURI, resolve_redirect

__all__ = ["Opened", "open_connection"]

logger = logging.getLogger("trio_mws")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Opened:
    """The result of the pipeline: an upgraded stream and what was negotiated."""

    stream: trio.abc.Stream
    tcp: trio.SocketStream
    uri: WebSocketURI
    upgrade: UpgradeResult
    tls: TlsInfo | None
    timings: ConnectTimings
    #: ``(host, port)`` of our end and the peer's, read when TCP connected (``None`` for a
    #: Unix socket, or when the kernel no longer knew: a reset right after the upgrade).
    local_address: tuple[str, int] | None
    remote_address: tuple[str, int] | None


def _check_host_name(host: str) -> None:
    """Refuse a name that no resolver can look up, before any I/O and whether or not a
    proxy resolves it: DNS labels have 1 to 63 characters (what the IDNA codecs check).
    IP literals pass; non-ASCII names are left to the resolver's IDNA encoding."""
    if ":" in host or not host.isascii():
        return
    name = host[:-1] if host.endswith(".") else host
    if len(name) < 64 and ".." not in name and not name.startswith("."):
        return  # no label can be empty or too long: the usual case, decided at once
    lengths = [len(label) for label in name.split(".")]
    if len(name) > 253 or min(lengths) == 0 or max(lengths) > 63:
        raise ConnectError(
            f"cannot resolve {host!r}: not a valid DNS name (a label is empty or longer "
            "than 63 characters, or the name is longer than 253)",
            WebErrorStatus.HOST_NAME_NOT_RESOLVED,
        )


def _check_proxy_target(uri: WebSocketURI, proxy: Proxy, control: MessageWebSocketControl) -> None:
    """With a restricted ``network_access``, the server's address must be checked before the
    proxy connects to it: an IP address is checked here; a name that the proxy resolves
    itself (HTTP ``CONNECT``, socks5h) cannot be, so it is refused unless trusted. (socks5
    resolves locally, and checks what it resolved.)"""
    allowed = control.network_access
    if allowed == ALL_NETWORKS:
        return
    try:
        ipaddress.ip_address(uri.host)
    except ValueError:
        if proxy.scheme != "socks5" and not control.proxy_resolves_names_trusted:
            raise ValueError(
                f"the {proxy.scheme} proxy resolves {uri.host!r} itself, so network_access "
                "cannot check where it connects: use an IP address, a socks5:// proxy, or set "
                "control.proxy_resolves_names_trusted = True"
            ) from None
    else:
        check_address(uri.host, allowed)


async def _open_stream(
    uri: WebSocketURI,
    control: MessageWebSocketControl,
    validator: CustomValidator | None,
    timings: TimingRecorder,
) -> tuple[trio.abc.Stream, trio.SocketStream, TlsInfo | None]:
    _check_host_name(uri.host)
    path = control.unix_socket_path
    proxy = None if path is not None else choose_proxy(uri, control)
    if proxy is not None:
        _check_proxy_target(uri, proxy, control)
    try:
        if path is not None:
            with timings.stage("tcp"):
                transport: trio.abc.Stream = await _open_unix(path)
        elif proxy is None:
            transport = await open_tcp(uri.host, uri.port, control, timings)
        else:
            transport = await open_tunnel(proxy, uri, control, timings)
    except UnicodeError as exc:  # the IDNA encoding of a non-ASCII name failed
        raise ConnectError(
            f"cannot resolve {uri.host!r}: not a valid DNS name ({exc})",
            WebErrorStatus.HOST_NAME_NOT_RESOLVED,
        ) from exc
    if not uri.secure:
        return transport, socket_stream_of(transport), None
    with timings.stage("tls"):
        tls_stream, info = await start_tls(transport, uri.host, control, validator)
    return tls_stream, socket_stream_of(tls_stream), info


async def _open_unix(path: str) -> trio.SocketStream:
    try:
        return await trio.open_unix_socket(path)
    except OSError as exc:  # no such file, nobody listening, no permission: can't connect
        status = status_for_os_error(exc)
        if status is WebErrorStatus.UNKNOWN:
            status = WebErrorStatus.CANNOT_CONNECT
        raise ConnectError(f"cannot connect to the Unix socket {path}: {exc}", status) from exc


def _basic(credential: PasswordCredential) -> str:
    token = f"{credential.user_name}:{credential.password}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


def _origin(uri: WebSocketURI) -> tuple[bool, str, int]:
    """Scheme, host and port: credentials are only ever sent where they were given."""
    return uri.secure, uri.host.lower().rstrip("."), uri.port


def _credential(uri: WebSocketURI, control: MessageWebSocketControl) -> PasswordCredential | None:
    if control.server_credential is not None:
        return control.server_credential
    if uri.user_name is not None:
        return PasswordCredential(uri.user_name, uri.password or "")
    return None


def _refused(refusal: NotUpgraded, message: str, status: WebErrorStatus) -> HandshakeError:
    """The error for a response that did not upgrade (redirect refused, auth failed, ...)."""
    response = refusal.response
    return HandshakeError(
        message,
        status,
        status_code=response.status_code,
        headers=response.headers,
        body=refusal.body,
    )


def _redirect_target(uri: WebSocketURI, refusal: NotUpgraded, location: str) -> WebSocketURI:
    try:
        target = resolve_redirect(uri, location)
    except ValueError as exc:
        raise _refused(refusal, f"bad redirect: {exc}", WebErrorStatus.REDIRECT_FAILED) from None
    if uri.secure and not target.secure:
        raise _refused(
            refusal,
            f"refusing redirect from {uri} to {target}",
            WebErrorStatus.HTTPS_TO_HTTP_ON_REDIRECTION,
        )
    return target


async def _attempts(
    uri: WebSocketURI,
    control: MessageWebSocketControl,
    headers: dict[str, str],
    validator: CustomValidator | None,
    timings: TimingRecorder,
) -> Opened:
    # Credentials belong to the origin of the URI the user gave: server_credential, the
    # URI's userinfo, the user's Authorization and Cookie headers. Once a redirect leaves that
    # origin they are dropped for good, as browsers and httpx do: nothing to leak, and no
    # other origin can pick where on this one they are used.
    credential = _credential(uri, control)
    answered = bool(headers) and "authorization" in {name.lower() for name in headers}
    redirects = 0
    while True:
        stream, tcp, tls = await _open_stream(uri, control, validator, timings)
        try:
            with timings.stage("handshake"):
                outcome = await upgrade(stream, uri, control, headers)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        if isinstance(outcome, UpgradeResult):
            local, remote = socket_addresses(tcp)
            return Opened(stream, tcp, uri, outcome, tls, timings.result(), local, remote)
        await trio.aclose_forcefully(stream)
        code = outcome.response.status_code
        location = outcome.response.get("location")

        if code in _REDIRECTS and location:
            redirects += 1
            if redirects > control.max_redirects:
                raise _refused(
                    outcome,
                    f"more than {control.max_redirects} redirects",
                    WebErrorStatus.REDIRECT_FAILED,
                )
            target = _redirect_target(uri, outcome, location)
            logger.debug("redirect %d: %s -> %s", code, uri, target)
            if _origin(target) != _origin(uri):
                headers = {
                    name: value
                    for name, value in headers.items()
                    if name.lower() not in ("authorization", "cookie")
                }
                credential = None
            uri = target
            continue
        challenge = (outcome.response.get("www-authenticate") or "").lower()
        if (
            code == 401
            and credential is not None
            and not answered
            and (not challenge or "basic" in challenge)
        ):
            headers = {**headers, "Authorization": _basic(credential)}
            answered = True
            continue
        raise _refused(
            outcome,
            f"server answered the upgrade with HTTP {code} {outcome.response.reason}".rstrip(),
            status_for_http_code(code),
        )


async def open_connection(
    uri: WebSocketURI,
    control: MessageWebSocketControl,
    headers: dict[str, str],
    validator: CustomValidator | None,
) -> Opened:
    """Run the whole pipeline under ``control.connect_timeout``.

    Every network failure leaves as a :class:`ConnectError` (or a subclass) carrying the
    :class:`ConnectTimings` of the stages reached; ``ValueError`` for a combination of
    settings that cannot be honoured (a proxy that resolves names under a restricted
    ``network_access``).
    """
    timings = TimingRecorder()
    try:
        # A bare cancel scope: trio.fail_after is a generator-based context manager, a
        # measurable part of a handshake's CPU.
        with trio.CancelScope(deadline=trio.current_time() + control.connect_timeout):
            return await _attempts(uri, control, dict(headers), validator, timings)
        # Reached only when the deadline cancelled the attempts.
        raise ConnectError(
            f"opening {uri} timed out after {control.connect_timeout} s", WebErrorStatus.TIMEOUT
        ) from trio.TooSlowError()
    except ConnectError as exc:
        exc.timings = timings.result()
        raise
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        status = classify(exc)
        if status is WebErrorStatus.UNKNOWN:
            status = WebErrorStatus.CANNOT_CONNECT
        error = ConnectError(f"opening {uri} failed: {exc}", status)
        error.timings = timings.result()
        raise error from exc
