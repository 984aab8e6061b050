"""The TCP and TLS stages of opening: a byte stream to the server, verified."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass

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
from .status import classify, status_for_os_error
from .tls_contexts import proxy_context, tls_setup
from .tls_stream import TlsStream

__all__ = ["TlsInfo", "open_tcp", "socket_stream_of", "start_proxy_tls", "start_tls"]

logger = logging.getLogger("trio_mws")


async def open_tcp(host: str, port: int, control: MessageWebSocketControl) -> trio.SocketStream:
    """Resolve ``host`` and open a TCP connection (happy eyeballs), mapping failures.

    An IP address is connected to directly: happy eyeballs has nothing to race then, and
    its machinery costs several scheduling rounds per connection.
    """
    try:
        family = _address_family(host)
        if family is None:
            stream = await trio.open_tcp_stream(host, port)
        else:
            stream = await _connect_address(family, host, port)
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


def _address_family(host: str) -> socket.AddressFamily | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


async def _connect_address(family: socket.AddressFamily, host: str, port: int) -> trio.SocketStream:
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


def direct_descriptor(stream: trio.abc.Stream) -> int | None:
    """The file descriptor to read and write with direct non-blocking system calls, or None.

    Only a plain TCP socket on POSIX qualifies (``os.read``/``os.write`` do not work on
    Windows sockets, and TLS needs its stream). Direct calls skip the scheduling round trio
    adds after each successful socket operation.
    """
    if isinstance(stream, trio.SocketStream) and os.name == "posix":
        return stream.socket.fileno()
    return None


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """What the TLS stage learned about the server's certificate."""

    certificate: x509.Certificate | None
    intermediates: tuple[x509.Certificate, ...]
    errors: tuple[ChainValidationResult, ...]
    severity: SocketSslErrorSeverity


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
