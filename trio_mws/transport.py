"""The TCP and TLS stages of opening: a byte stream to the server, verified."""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

import trio
from cryptography import x509

from .certificates import (
    CustomValidator,
    ServerCustomValidationRequest,
    chain_result_for_verify_code,
    find_own_errors,
    run_custom_validation,
    severity_for,
    status_for_chain_results,
)
from .control import MessageWebSocketControl
from .enums import ChainValidationResult, SocketSslErrorSeverity, WebErrorStatus
from .errors import CertificateError, CertificateRejected, ConnectError
from .status import classify, status_for_os_error

__all__ = ["TlsInfo", "open_tcp", "start_tls"]

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


_recorded: ContextVar[list[ssl.SSLObject] | None] = ContextVar("_recorded", default=None)


class _RecordingSSLObject(ssl.SSLObject):
    """An ``ssl.SSLObject`` that hands itself to the TLS stage, which needs it to read the
    chain the server sent (``trio.SSLStream`` keeps its object private)."""

    def __new__(cls, *args: object, **kwargs: object) -> _RecordingSSLObject:
        instance = super().__new__(cls)
        sink = _recorded.get()
        if sink is not None:
            sink.append(instance)
        return instance


def _recording(context: ssl.SSLContext) -> ssl.SSLContext:
    # Harmless on a user's context: the subclass only records while our handshake runs.
    if context.sslobject_class is ssl.SSLObject:
        context.sslobject_class = _RecordingSSLObject
    return context


@functools.cache
def _default_context() -> ssl.SSLContext:
    # Loading the system trust store costs milliseconds: do it once per process.
    return _recording(ssl.create_default_context())


def _context(control: MessageWebSocketControl, *, verify: bool) -> ssl.SSLContext:
    if verify:
        context = _recording(control.ssl_context) if control.ssl_context else _default_context()
        check_verifying(context)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if control.client_certificate is not None:
        if verify:  # never add a client certificate to a shared or user-owned context
            context = _copy_verifying(control.ssl_context or ssl.create_default_context())
        cert = control.client_certificate
        try:
            context.load_cert_chain(cert.certfile, cert.keyfile, cert.password)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load client certificate: {exc}") from exc
    return context


def check_verifying(context: ssl.SSLContext) -> None:
    """``control.ssl_context`` sets trust, never turns verification off (``ValueError``)."""
    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ValueError(
            "control.ssl_context must verify certificates and host names; to tolerate "
            "specific errors use control.ignorable_server_certificate_errors"
        )


def _copy_verifying(base: ssl.SSLContext) -> ssl.SSLContext:
    # load_cert_chain mutates a context: never mutate the user's own.
    context = ssl.create_default_context()
    pem = _ca_pem(base)
    if pem:
        context.load_verify_locations(cadata=pem)
    return _recording(context)


def _ca_pem(context: ssl.SSLContext) -> str:
    ders = context.get_ca_certs(binary_form=True)
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in ders)


def _sent_chain(ssl_object: ssl.SSLObject | None) -> list[bytes]:
    """The DER certificates the server sent, leaf first; empty when unavailable."""
    getter = getattr(ssl_object, "get_unverified_chain", None)  # public from Python 3.13
    if getter is None:  # 3.11 and 3.12 have it one level down
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        return []
    try:
        chain = getter() or []
        return [
            item if isinstance(item, bytes) else item.public_bytes(_ENCODING_DER) for item in chain
        ]
    except (AttributeError, TypeError, ValueError, ssl.SSLError):  # pragma: no cover
        return []


_ENCODING_DER = 2  # ssl's private _ssl.ENCODING_DER, for the 3.11/3.12 Certificate objects


def _certificates(
    stream: trio.SSLStream[trio.SocketStream], ssl_object: ssl.SSLObject | None
) -> tuple[x509.Certificate | None, tuple[x509.Certificate, ...]]:
    der = stream.getpeercert(binary_form=True)
    leaf = x509.load_der_x509_certificate(der) if der else None
    chain = _sent_chain(ssl_object)
    intermediates = tuple(x509.load_der_x509_certificate(item) for item in chain[1:])
    return leaf, intermediates


async def _handshake(
    tcp: trio.SocketStream, host: str, context: ssl.SSLContext
) -> tuple[trio.SSLStream[trio.SocketStream], ssl.SSLObject | None]:
    sink: list[ssl.SSLObject] = []
    token = _recorded.set(sink)
    try:
        stream = trio.SSLStream(tcp, context, server_hostname=host)
    finally:
        _recorded.reset(token)
    await stream.do_handshake()
    return stream, (sink[0] if sink else None)


async def start_tls(
    tcp: trio.SocketStream,
    host: str,
    control: MessageWebSocketControl,
    validator: CustomValidator | None,
    reconnect: Callable[[], Awaitable[trio.SocketStream]],
) -> tuple[trio.SSLStream[trio.SocketStream], TlsInfo]:
    """Run the TLS handshake, classify certificate errors and apply the user's policy.

    Default validation comes first; an error listed in
    ``control.ignorable_server_certificate_errors`` is tolerated by reconnecting without
    verification and checking what we can ourselves. Then ``validator`` (if any) decides.
    """
    errors: list[ChainValidationResult] = []
    try:
        stream, ssl_object = await _handshake(tcp, host, _context(control, verify=True))
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(tcp)
        cause = exc.__cause__
        if not isinstance(cause, ssl.SSLCertVerificationError):
            raise ConnectError(
                f"TLS handshake with {host} failed: {cause or exc}", classify(cause or exc)
            ) from exc
        errors.append(chain_result_for_verify_code(cause.verify_code))
        if not all(error in control.ignorable_server_certificate_errors for error in errors):
            raise CertificateError(
                f"server certificate of {host} rejected: {cause.verify_message}",
                status_for_chain_results(errors),
                errors=errors,
            ) from exc
        # Tolerated: open a fresh connection that does not verify, then look for more errors.
        stream, ssl_object = await _handshake(
            await reconnect(), host, _recording(_context(control, verify=False))
        )
    leaf, intermediates = _certificates(stream, ssl_object)
    if errors and leaf is not None:
        errors += [error for error in find_own_errors(leaf, host) if error not in errors]
    severity = severity_for(errors, control.ignorable_server_certificate_errors)
    if severity is SocketSslErrorSeverity.FATAL:
        await trio.aclose_forcefully(stream)
        fatal = [e for e in errors if e not in control.ignorable_server_certificate_errors]
        raise CertificateError(
            f"server certificate of {host} has errors: {', '.join(e.name for e in errors)}",
            status_for_chain_results(fatal),
            errors=errors,
            certificate=leaf,
        )
    info = TlsInfo(leaf, intermediates, tuple(errors), severity)
    if validator is not None and leaf is not None:
        request = ServerCustomValidationRequest(leaf, intermediates, tuple(errors), severity)
        if not await run_custom_validation(validator, request):
            await trio.aclose_forcefully(stream)
            raise CertificateRejected(
                f"server certificate of {host} rejected by custom validation",
                WebErrorStatus.CERTIFICATE_IS_INVALID,
                errors=errors,
                certificate=leaf,
            )
    return stream, info
