"""Classification of any exception into a :class:`WebErrorStatus`.

By errno first (the most precise), then by exception type (``ConnectionRefusedError()`` and
friends are often built without an errno), then through what an exception wraps: the cause
of a ``trio.BrokenResourceError``, the attempts of happy eyeballs, the members of a group.
"""

from __future__ import annotations

import errno
import socket
import ssl

import h11
import trio

from .enums import WebErrorStatus

__all__ = ["classify", "status_for_http_code", "status_for_os_error"]

_HTTP_STATUSES = {member.value for member in WebErrorStatus if member.value >= 300}

_ERRNO_STATUS = {
    errno.ECONNREFUSED: WebErrorStatus.CANNOT_CONNECT,
    # Failures of socket() or connect() itself: no connection was made.
    errno.EADDRNOTAVAIL: WebErrorStatus.CANNOT_CONNECT,
    errno.EADDRINUSE: WebErrorStatus.CANNOT_CONNECT,
    errno.EAFNOSUPPORT: WebErrorStatus.CANNOT_CONNECT,
    errno.EACCES: WebErrorStatus.CANNOT_CONNECT,
    errno.EPERM: WebErrorStatus.CANNOT_CONNECT,
    errno.EMFILE: WebErrorStatus.CANNOT_CONNECT,
    errno.ENFILE: WebErrorStatus.CANNOT_CONNECT,
    errno.ENOBUFS: WebErrorStatus.CANNOT_CONNECT,
    errno.ENOMEM: WebErrorStatus.CANNOT_CONNECT,
    errno.ENETUNREACH: WebErrorStatus.SERVER_UNREACHABLE,
    errno.EHOSTUNREACH: WebErrorStatus.SERVER_UNREACHABLE,
    errno.ENETDOWN: WebErrorStatus.SERVER_UNREACHABLE,
    errno.EHOSTDOWN: WebErrorStatus.SERVER_UNREACHABLE,
    errno.ETIMEDOUT: WebErrorStatus.TIMEOUT,
    errno.ECONNRESET: WebErrorStatus.CONNECTION_RESET,
    errno.ENETRESET: WebErrorStatus.CONNECTION_RESET,
    errno.ECONNABORTED: WebErrorStatus.CONNECTION_ABORTED,
    errno.EPIPE: WebErrorStatus.CONNECTION_ABORTED,
    errno.ESHUTDOWN: WebErrorStatus.CONNECTION_ABORTED,
    errno.ENOTCONN: WebErrorStatus.CONNECTION_ABORTED,
}

# For OSErrors built without an errno (by trio, by hand, or on another platform).
_TYPE_STATUS: tuple[tuple[type[OSError], WebErrorStatus], ...] = (
    (TimeoutError, WebErrorStatus.TIMEOUT),
    (ConnectionRefusedError, WebErrorStatus.CANNOT_CONNECT),
    (ConnectionResetError, WebErrorStatus.CONNECTION_RESET),
    (ConnectionAbortedError, WebErrorStatus.CONNECTION_ABORTED),
    (BrokenPipeError, WebErrorStatus.CONNECTION_ABORTED),
)

# How many exceptions to look at through causes and groups: real chains have two or three.
_MAX_VISITED = 64


def status_for_http_code(code: int) -> WebErrorStatus:
    """The status for a handshake answered with HTTP status ``code`` instead of 101."""
    if code in _HTTP_STATUSES:
        return WebErrorStatus(code)
    if 300 <= code < 400:
        return WebErrorStatus.UNEXPECTED_REDIRECTION
    if 400 <= code < 500:
        return WebErrorStatus.UNEXPECTED_CLIENT_ERROR
    if 500 <= code < 600:
        return WebErrorStatus.UNEXPECTED_SERVER_ERROR
    return WebErrorStatus.UNEXPECTED_STATUS_CODE


def _status_for_ssl_error(error: ssl.SSLError) -> WebErrorStatus:
    # An SSLError's errno is OpenSSL's error kind, not the system's: never read as errno.
    if isinstance(error, ssl.SSLCertVerificationError):
        from .certificates import status_for_verify_code

        code = getattr(error, "verify_code", None)  # absent on a bare instance
        if isinstance(code, int):
            return status_for_verify_code(code)
        return WebErrorStatus.CERTIFICATE_IS_INVALID
    if (
        isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError)
        or getattr(error, "reason", None) == "UNEXPECTED_EOF_WHILE_READING"
    ):
        return WebErrorStatus.DISCONNECTED  # TCP ended under TLS: like EOF on plain TCP
    # Anything else (alerts, protocol errors, a peer that does not speak TLS): TLS gave up.
    return WebErrorStatus.CONNECTION_ABORTED


def status_for_os_error(error: OSError) -> WebErrorStatus:
    """The status for an ``OSError`` raised by DNS or a socket operation.

    ``UNKNOWN`` when neither its errno, nor its type, nor what it wraps says more: the
    caller knows what was being done and picks the fallback.
    """
    return _walk(error)[0]


def _own_status(error: BaseException) -> WebErrorStatus:
    """What ``error`` says by itself (not what it wraps), else ``UNKNOWN``."""
    from .errors import WebSocketError

    if isinstance(error, WebSocketError):
        return error.status
    if isinstance(error, trio.Cancelled):
        return WebErrorStatus.OPERATION_CANCELED
    if isinstance(error, trio.TooSlowError):
        return WebErrorStatus.TIMEOUT
    if isinstance(error, ssl.SSLError):
        return _status_for_ssl_error(error)
    if isinstance(error, socket.gaierror | socket.herror):  # their errno is a resolver code
        return WebErrorStatus.HOST_NAME_NOT_RESOLVED
    if isinstance(error, OSError):
        code = error.errno
        if isinstance(code, int) and code in _ERRNO_STATUS:
            return _ERRNO_STATUS[code]
        for kind, status in _TYPE_STATUS:
            if isinstance(error, kind):
                return status
    if isinstance(error, h11.ProtocolError):
        return WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE
    if isinstance(error, UnicodeError) and _is_idna_error(error):
        return WebErrorStatus.HOST_NAME_NOT_RESOLVED
    return WebErrorStatus.UNKNOWN


_CONNECTION_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


def _walk(error: BaseException) -> tuple[WebErrorStatus, bool]:
    """The status of ``error`` or, breadth first, of what it wraps: the members of a group
    and causes (trio.open_tcp_stream raises ``OSError("all attempts ... failed")`` from a
    group of the attempts' errors; trio's stream errors wrap the socket's or ssl's).

    ``UNKNOWN`` if none says more, with whether a system or stream error was among them.
    """
    queue: list[BaseException] = [error]
    seen: set[int] = set()
    aborted = False
    while queue and len(seen) < _MAX_VISITED:  # bounded, even for cycles and huge groups
        item = queue.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        status = _own_status(item)
        if status is not WebErrorStatus.UNKNOWN:
            return status, aborted
        aborted = aborted or isinstance(item, _CONNECTION_ERRORS)
        if isinstance(item, BaseExceptionGroup):
            queue.extend(item.exceptions[:_MAX_VISITED])
        if isinstance(item.__cause__, BaseException):
            queue.append(item.__cause__)
    return WebErrorStatus.UNKNOWN, aborted


def _is_idna_error(error: UnicodeError) -> bool:
    # The stdlib codec raises a bare UnicodeError (3.13: UnicodeEncodeError "idna"), the
    # idna package (trio's encoder) an IDNAError, a UnicodeError subclass.
    return (
        type(error) is UnicodeError
        or getattr(error, "encoding", None) == "idna"
        or type(error).__module__.startswith("idna")
    )


def classify(error: BaseException | None) -> WebErrorStatus:
    """Map ``error`` to a status, as ``WebSocketError.get_status`` documents; never raises."""
    if error is None:
        return WebErrorStatus.UNKNOWN
    try:
        status, aborted = _walk(error)
    except Exception:  # a hostile exception object (a property that raises, ...)
        return WebErrorStatus.UNKNOWN
    if status is WebErrorStatus.UNKNOWN and aborted:
        # A system or stream error that says nothing more: the connection was given up.
        return WebErrorStatus.CONNECTION_ABORTED
    return status
