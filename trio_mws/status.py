"""Classification of any exception into a :class:`WebErrorStatus`."""

from __future__ import annotations

import errno
import socket
import ssl

import trio

from .enums import WebErrorStatus

__all__ = ["classify", "status_for_http_code", "status_for_os_error"]

_HTTP_STATUSES = {member.value for member in WebErrorStatus if member.value >= 300}

_ERRNO_STATUS = {
    errno.ECONNREFUSED: WebErrorStatus.CANNOT_CONNECT,
    errno.ENETUNREACH: WebErrorStatus.SERVER_UNREACHABLE,
    errno.EHOSTUNREACH: WebErrorStatus.SERVER_UNREACHABLE,
    errno.ENETDOWN: WebErrorStatus.SERVER_UNREACHABLE,
    errno.EHOSTDOWN: WebErrorStatus.SERVER_UNREACHABLE,
    errno.ETIMEDOUT: WebErrorStatus.TIMEOUT,
    errno.ECONNRESET: WebErrorStatus.CONNECTION_RESET,
    errno.ECONNABORTED: WebErrorStatus.CONNECTION_ABORTED,
    errno.EPIPE: WebErrorStatus.CONNECTION_ABORTED,
    errno.ESHUTDOWN: WebErrorStatus.CONNECTION_ABORTED,
}


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


def status_for_os_error(error: OSError) -> WebErrorStatus:
    """The status for an ``OSError`` raised by DNS or a socket operation."""
    if isinstance(error, socket.gaierror):
        return WebErrorStatus.HOST_NAME_NOT_RESOLVED
    if isinstance(error, ssl.SSLCertVerificationError):
        from .certificates import status_for_verify_code

        return status_for_verify_code(error.verify_code)
    if isinstance(error, ssl.SSLEOFError):  # the TCP connection ended without close_notify
        return WebErrorStatus.DISCONNECTED
    if isinstance(error, ssl.SSLError):
        return WebErrorStatus.CONNECTION_ABORTED
    if error.errno in _ERRNO_STATUS:
        return _ERRNO_STATUS[error.errno]
    # trio.open_tcp_stream raises OSError("all attempts to connect ... failed") whose
    # __cause__ holds the individual failures.
    causes = [error.__cause__, *getattr(error.__cause__, "exceptions", ())]
    for cause in causes:
        if isinstance(cause, OSError) and cause is not error:
            status = status_for_os_error(cause)
            if status is not WebErrorStatus.UNKNOWN:
                return status
    return WebErrorStatus.UNKNOWN


def classify(error: BaseException | None) -> WebErrorStatus:
    """Map ``error`` to a status, as ``WebSocketError.get_status`` documents."""
    from .errors import WebSocketError

    if isinstance(error, WebSocketError):
        return error.status
    if isinstance(error, trio.Cancelled):
        return WebErrorStatus.OPERATION_CANCELED
    if isinstance(error, (trio.TooSlowError, TimeoutError)):
        return WebErrorStatus.TIMEOUT
    if isinstance(error, OSError):
        return status_for_os_error(error)
    if isinstance(error, trio.BrokenResourceError):
        cause = error.__cause__
        if isinstance(cause, BaseException) and cause is not error:
            status = classify(cause)
            if status is not WebErrorStatus.UNKNOWN:
                return status
        return WebErrorStatus.CONNECTION_ABORTED
    if isinstance(error, trio.ClosedResourceError):
        return WebErrorStatus.CONNECTION_ABORTED
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            status = classify(inner)
            if status is not WebErrorStatus.UNKNOWN:
                return status
    return WebErrorStatus.UNKNOWN
