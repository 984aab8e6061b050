"""The exception hierarchy: every failure is a :class:`WebSocketError` with a status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .enums import ChainValidationResult, WebErrorStatus

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    from .timings import ConnectTimings

__all__ = [
    "CertificateError",
    "CertificateRejected",
    "ConnectError",
    "ConnectionClosed",
    "HandshakeError",
    "MessageTooBig",
    "NetworkAccessDenied",
    "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of every error trio_mws raises for a network operation.

    ``status`` classifies the failure; the original low-level exception, if any, is
    chained as ``__cause__``.
    """

    def __init__(self, message: str, status: WebErrorStatus = WebErrorStatus.UNKNOWN) -> None:
        super().__init__(message)
        self.status = WebErrorStatus(status)

    @staticmethod
    def get_status(error: BaseException | None) -> WebErrorStatus:
        """Classify any exception into a :class:`WebErrorStatus`; never raises.

        Like ``WebSocketError.GetStatus`` on Windows: ours carry their status; ``OSError``
        (by errno, then by type), every ``ssl`` error, trio errors, timeouts, DNS and IDNA
        errors are mapped, looking through causes and exception groups; anything else is
        ``UNKNOWN``.
        """
        from .status import classify

        return classify(error)


class ConnectError(WebSocketError):
    """Opening the connection failed: DNS, TCP, proxy, TLS, handshake or timeout.

    ``timings`` (:class:`~trio_mws.ConnectTimings` or ``None``) tells how far the opening got
    and where its time went; it is set on every ``ConnectError`` that ``connect`` raises.
    """

    #: Where the failed opening's time went, as far as it got (set by ``connect``).
    timings: ConnectTimings | None = None


class NetworkAccessDenied(ConnectError):
    """``control.network_access`` refused the address (status ``CANNOT_CONNECT``): nothing
    was sent to it. Final by nature: ``RetryPolicy`` never retries it."""


class HandshakeError(ConnectError):
    """The server answered the upgrade request but did not switch protocols."""

    def __init__(
        self,
        message: str,
        status: WebErrorStatus,
        *,
        status_code: int | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        super().__init__(message, status)
        #: The HTTP status code of the response, or ``None`` if it was not valid HTTP.
        self.status_code = status_code
        #: The response headers, in order, as ``(name, value)`` pairs.
        self.headers = tuple(headers)
        #: The response body (bounded in size).
        self.body = body


class CertificateError(ConnectError):
    """The server's TLS certificate failed validation."""

    def __init__(
        self,
        message: str,
        status: WebErrorStatus,
        *,
        errors: Sequence[ChainValidationResult] = (),
        certificate: Certificate | None = None,
    ) -> None:
        super().__init__(message, status)
        #: What validation found, as :class:`ChainValidationResult` members.
        self.errors = tuple(errors)
        #: The server's certificate, when it was received.
        self.certificate = certificate


class CertificateRejected(CertificateError):
    """``server_custom_validation_requested`` called ``reject()``."""


class ConnectionClosed(WebSocketError):
    """The connection was closed or lost while in use.

    ``code`` and ``reason`` are the close code and reason (1006 and ``""`` when the connection
    was lost without a close frame).
    """

    def __init__(
        self,
        message: str,
        status: WebErrorStatus,
        *,
        code: int = 1006,
        reason: str = "",
    ) -> None:
        super().__init__(message, status)
        self.code = code
        self.reason = reason


class MessageTooBig(ConnectionClosed):
    """A FULL_MESSAGE message exceeded ``max_message_size``; the connection closed with 1009."""
