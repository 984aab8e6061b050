"""The TCP and TLS stages of opening: a byte stream to the server, verified."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from cryptography import x509

from .certificates import (
    CustomValidator,
    ServerCustomValidationRequest,
    chain_errors,
    chain_result_for_verify_code,
    run_custom_validation,
    severity_for,
    status_for_chain_results,
)
from .control import MessageWebSocketControl
from .enums import ChainValidationResult, SocketSslErrorSeverity, WebErrorStatus
from .errors import CertificateError, CertificateRejected, ConnectError
from .network_access import check_address, refusal
from .status import classify, status_for_os_error
from .timings import TimingRecorder
from .tls_contexts import proxy_context, tls_setup
from .tls_stream import TlsStream

__all__ = [
    "TlsInfo",
    "open_tcp",
    "socket_addresses",
    "socket_stream_of",
    "start_proxy_tls",
    "start_tls",
]

logger = logging.getLogger("trio_mws")


#: Seconds before the next address is tried while the previous attempt is still pending
#: (RFC 8305's "Connection Attempt Delay"; trio's default too).
HAPPY_EYEBALLS_DELAY = 0.25

Target = tuple[socket.AddressFamily, tuple[Any, ...]]


async def open_tcp(
    host: str, port: int, control: MessageWebSocketControl, timings: TimingRecorder
) -> trio.SocketStream:
    """Resolve ``host`` and open a TCP connection, mapping failures to :class:`ConnectError`.

    Every address resolved is checked against ``control.network_access`` before any packet
    is sent, and the connection goes to a checked address (there is no second resolution
    for DNS rebinding to exploit). The addresses are tried in the resolver's order, IPv6 and
    IPv4 interleaved, each started 250 ms after the previous one unless that one failed
    sooner (happy eyeballs); the first to connect wins. An IP address needs no DNS.
    """
    targets = await _resolve(host, port, timings)
    # Every address is checked, also with the default access: unspecified, multicast and
    # reserved addresses are never dialled.
    allowed = control.network_access
    checked = [target for target in targets if refusal(str(target[1][0]), allowed) is None]
    if not checked:
        check_address(str(targets[0][1][0]), allowed)  # raises, naming the address
    targets = checked
    try:
        with timings.stage("tcp"):
            stream = await _connect_first(targets)
    except OSError as exc:
        status = status_for_os_error(exc)
        if status is WebErrorStatus.UNKNOWN:
            status = WebErrorStatus.CANNOT_CONNECT
        raise ConnectError(f"cannot connect to {host}:{port}: {exc}", status) from exc
    if control.outbound_buffer_size_in_bytes is not None:
        try:
            stream.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, control.outbound_buffer_size_in_bytes
            )
        except OSError as exc:  # pragma: no cover - only on exotic platforms
            logger.debug("SO_SNDBUF not set: %s", exc)
    return stream


async def _resolve(host: str, port: int, timings: TimingRecorder) -> list[Target]:
    """The addresses to try for ``host`` (an IP address: itself, without DNS)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        return [(family, (host, port))]
    try:
        with timings.stage("dns"):
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        status = status_for_os_error(exc)
        if status is WebErrorStatus.UNKNOWN:
            status = WebErrorStatus.HOST_NAME_NOT_RESOLVED
        raise ConnectError(f"cannot resolve {host}: {exc}", status) from exc
    targets: list[Target] = []
    for family, _type, _proto, _name, sockaddr in infos:
        target = (family, sockaddr)
        if target not in targets:
            targets.append(target)
    if not targets:
        raise ConnectError(
            f"cannot resolve {host}: no address", WebErrorStatus.HOST_NAME_NOT_RESOLVED
        )
    return _interleave(targets)


def _interleave(targets: list[Target]) -> list[Target]:
    """The first address's family first, then alternating families (RFC 8305 section 4)."""
    first = targets[0][0]
    same = [target for target in targets if target[0] == first]
    other = [target for target in targets if target[0] != first]
    result: list[Target] = []
    while same or other:
        if same:
            result.append(same.pop(0))
        if other:
            result.append(other.pop(0))
    return result


async def _connect_first(targets: list[Target]) -> trio.SocketStream:
    """Connect to the first of ``targets`` that answers (happy eyeballs); ``OSError`` when
    none does (the last failure, with every failure in its ``__cause__``)."""
    if len(targets) == 1:  # nothing to race: no nursery, no timer
        family, sockaddr = targets[0]
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        try:
            await sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        return trio.SocketStream(sock)
    winner: trio.socket.SocketType | None = None
    failures: list[OSError] = []

    async def attempt(
        family: socket.AddressFamily,
        sockaddr: tuple[Any, ...],
        failed: trio.Event,
        nursery: trio.Nursery,
    ) -> None:
        nonlocal winner
        try:
            sock = trio.socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:  # no descriptor left, no IPv6 on this host...
            failures.append(exc)
            failed.set()
            return
        try:
            await sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            failures.append(exc)
            failed.set()
            return
        except BaseException:
            sock.close()
            raise
        if winner is None:
            winner = sock
            nursery.cancel_scope.cancel()  # the others lost
        else:  # pragma: no cover - two connects finishing in one scheduling round
            sock.close()

    async with trio.open_nursery() as nursery:
        for family, sockaddr in targets:
            failed = trio.Event()
            nursery.start_soon(attempt, family, sockaddr, failed, nursery)
            with trio.move_on_after(HAPPY_EYEBALLS_DELAY):
                await failed.wait()
    if winner is None:
        error = failures[-1]
        if len(failures) > 1:
            error.__cause__ = ExceptionGroup("every address failed", failures[:-1])
        raise error
    return trio.SocketStream(winner)


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """What the TLS stage learned about the server's certificate."""

    certificate: x509.Certificate | None
    intermediates: tuple[x509.Certificate, ...]
    errors: tuple[ChainValidationResult, ...]
    severity: SocketSslErrorSeverity


def socket_addresses(
    tcp: trio.SocketStream,
) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """``(host, port)`` of both ends of a TCP connection; ``None`` for an end the kernel
    cannot name (a Unix socket, or a connection already reset)."""
    return _address(tcp.socket.getsockname), _address(tcp.socket.getpeername)


def _address(query: Callable[[], object]) -> tuple[str, int] | None:
    try:
        raw = query()
    except OSError:
        return None
    if isinstance(raw, tuple) and len(raw) >= 2:
        return str(raw[0]), int(raw[1])
    return None


def socket_stream_of(stream: trio.abc.Stream) -> trio.SocketStream:
    """The TCP stream under ``stream`` (TLS to the server, maybe inside TLS to a proxy)."""
    while isinstance(stream, TlsStream):
        stream = stream.transport_stream
    assert isinstance(stream, trio.SocketStream)
    return stream


def _received_chain(
    stream: TlsStream,
) -> tuple[x509.Certificate | None, tuple[x509.Certificate, ...]]:
    """The leaf and the intermediates the server sent on this connection.

    ``SSLObject.get_unverified_chain()`` is public from Python 3.13. On 3.11 and 3.12 only
    the leaf is readable (``getpeercert(binary_form=True)``): no intermediates are reported,
    and our own validation must find the leaf's issuer among the trust anchors.
    """
    ssl_object = stream.ssl_object
    getter = getattr(ssl_object, "get_unverified_chain", None)
    chain: list[bytes] = list(getter() or []) if getter is not None else []
    if not chain:
        der = ssl_object.getpeercert(binary_form=True)
        chain = [der] if der else []
    if not chain:
        return None, ()
    certificates = [x509.load_der_x509_certificate(der) for der in chain]
    return certificates[0], tuple(certificates[1:])


async def _handshake(stream: TlsStream, host: str) -> None:
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            errors = [chain_result_for_verify_code(cause.verify_code)]
            raise CertificateError(
                f"certificate of {host} rejected: {cause.verify_message}",
                status_for_chain_results(errors),
                errors=errors,
            ) from exc
        raise ConnectError(
            f"TLS handshake with {host} failed: {cause or exc}", classify(cause or exc)
        ) from exc


async def start_proxy_tls(
    transport: trio.SocketStream, host: str, control: MessageWebSocketControl
) -> TlsStream:
    """TLS to an ``https://`` proxy, verified by OpenSSL against ``control.proxy_ssl_context``
    (default: the system's trust). Closes ``transport`` on failure."""
    try:
        stream = TlsStream(transport, await proxy_context(control), server_hostname=host)
        await _handshake(stream, f"proxy {host}")
    except BaseException:
        await trio.aclose_forcefully(transport)
        raise
    return stream


async def start_tls(
    transport: trio.abc.Stream,
    host: str,
    control: MessageWebSocketControl,
    validator: CustomValidator | None,
) -> tuple[TlsStream, TlsInfo]:
    """Run the TLS handshake on ``transport``, validate and apply the user's policy.

    Without ``control.ignorable_server_certificate_errors`` OpenSSL verifies during the
    handshake. With them, the handshake does not verify and the chain the server sent on
    this very connection is validated afterwards, reporting every error. Then ``validator``
    (if any) decides. ``transport`` is closed on failure.
    """
    try:
        setup = await tls_setup(control)
    except BaseException:
        await trio.aclose_forcefully(transport)
        raise
    stream = TlsStream(transport, setup.context, server_hostname=host)
    try:
        await _handshake(stream, host)
        leaf, intermediates = _received_chain(stream)
        if leaf is None:
            raise CertificateError(
                f"{host} sent no certificate",
                WebErrorStatus.CERTIFICATE_IS_INVALID,
                errors=[ChainValidationResult.UNTRUSTED],
            )
        errors: list[ChainValidationResult] = []
        if setup.anchors is not None:
            errors = chain_errors(leaf, intermediates, setup.anchors.store, host)
        severity = severity_for(errors, control.ignorable_server_certificate_errors)
        if severity is SocketSslErrorSeverity.FATAL:
            fatal = [e for e in errors if e not in control.ignorable_server_certificate_errors]
            raise CertificateError(
                f"certificate of {host} has errors: {', '.join(e.name for e in errors)}",
                status_for_chain_results(fatal),
                errors=errors,
                certificate=leaf,
            )
        info = TlsInfo(leaf, intermediates, tuple(errors), severity)
        if validator is not None:
            request = ServerCustomValidationRequest(leaf, intermediates, tuple(errors), severity)
            if not await run_custom_validation(validator, request):
                raise CertificateRejected(
                    f"certificate of {host} rejected by custom validation",
                    WebErrorStatus.CERTIFICATE_IS_INVALID,
                    errors=errors,
                    certificate=leaf,
                )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream, info
