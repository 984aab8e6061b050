"""``RetryPolicy``: which failures are worth another attempt, and how long to wait first.

Used by :func:`~trio_mws.run_reconnecting`. The policy holds no state between calls (the
reconnect loop counts the attempts), so one policy may serve many loops at once.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import re
import time
from dataclasses import dataclass, field

from .enums import WebErrorStatus
from .errors import (
    CertificateError,
    ConnectionClosed,
    HandshakeError,
    NetworkAccessDenied,
    WebSocketError,
)

__all__ = [
    "RETRIED_CLOSE_CODES",
    "RETRIED_STATUSES",
    "RetryPolicy",
    "parse_retry_after",
]

#: Close codes after which the default :meth:`~trio_mws.RetryPolicy.should_retry` reconnects: going
#: away (1001), lost without a close frame (1006), server error (1011), service restart
#: (1012), try again later (1013), bad gateway (1014). Every other code is final.
RETRIED_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})

#: Statuses of failures that are transient by nature: the network, not the request.
RETRIED_STATUSES = frozenset(
    {
        WebErrorStatus.TIMEOUT,
        WebErrorStatus.CONNECTION_RESET,
        WebErrorStatus.CONNECTION_ABORTED,
        WebErrorStatus.DISCONNECTED,
        WebErrorStatus.CANNOT_CONNECT,
        WebErrorStatus.SERVER_UNREACHABLE,
        WebErrorStatus.HOST_NAME_NOT_RESOLVED,
        WebErrorStatus.REQUEST_TIMEOUT,  # HTTP 408
        WebErrorStatus.INTERNAL_SERVER_ERROR,
        WebErrorStatus.NOT_IMPLEMENTED,
        WebErrorStatus.BAD_GATEWAY,
        WebErrorStatus.SERVICE_UNAVAILABLE,
        WebErrorStatus.GATEWAY_TIMEOUT,
        WebErrorStatus.HTTP_VERSION_NOT_SUPPORTED,
        WebErrorStatus.UNEXPECTED_SERVER_ERROR,  # any other 5xx
    }
)

# Checked first: these are final even when an HTTP status code or errno looks transient.
_FINAL_STATUSES = frozenset(
    {
        WebErrorStatus.CERTIFICATE_COMMON_NAME_IS_INCORRECT,
        WebErrorStatus.CERTIFICATE_EXPIRED,
        WebErrorStatus.CERTIFICATE_CONTAINS_ERRORS,
        WebErrorStatus.CERTIFICATE_REVOKED,
        WebErrorStatus.CERTIFICATE_IS_INVALID,
        WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE,
        WebErrorStatus.REDIRECT_FAILED,
        WebErrorStatus.HTTPS_TO_HTTP_ON_REDIRECTION,
        WebErrorStatus.HTTP_TO_HTTPS_ON_REDIRECTION,
        WebErrorStatus.UNEXPECTED_REDIRECTION,
    }
)

_RETRY_AFTER_STATUS_CODES = frozenset({429, 503})
_DIGITS = re.compile(r"[0-9]+")


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or ``None`` if unusable.

    ``value`` is delta-seconds (``"120"``) or an HTTP-date (``"Wed, 21 Oct 2026 07:28:00
    GMT"``); ``now`` is the current wall-clock time (``time.time()``, seconds since the epoch)
    that an HTTP-date is measured against. A date in the past gives ``0.0``. Anything else —
    negative or fractional numbers, garbage, an unparsable date — gives ``None``. The result
    is not bounded here: :meth:`RetryPolicy.next_delay` bounds it by ``max_delay``.
    """
    value = value.strip()
    if _DIGITS.fullmatch(value):
        # A huge digit string would make int() slow or raise; beyond 9 digits (31 years)
        # the exact value does not matter: max_delay bounds it.
        return float(int(value)) if len(value) <= 9 else math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" gives a naive datetime: HTTP dates are always GMT
        when = when.replace(tzinfo=datetime.UTC)
    try:
        target = when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return max(0.0, target - now)


def _number(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """A non-negative real number (``inf`` allowed), or ``None`` when ``allow_none``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """When :func:`~trio_mws.run_reconnecting` tries again, and after how long.

    Delays grow exponentially with *full jitter*: the delay before retry number ``attempt``
    is drawn uniformly from ``[0, min(max_delay, initial_delay * multiplier ** (attempt -
    1))]``, so that many clients that failed together do not come back together. A 429 or
    503 answer with a valid ``Retry-After`` header makes the delay at least what the server
    asked for, still bounded by ``max_delay``. Subclass and override :meth:`should_retry` or
    :meth:`next_delay` to change either decision.

    All times are in seconds. ``TypeError`` for a non-number, ``ValueError`` for a negative
    or NaN value (or ``multiplier`` below 1, ``max_attempts`` below 1).
    """

    #: Upper bound of the first retry's delay, seconds (default 1.0).
    initial_delay: float = 1.0
    #: Growth factor of the bound from one retry to the next, at least 1 (default 2.0).
    multiplier: float = 2.0
    #: No delay is ever longer, ``Retry-After`` included, seconds (default 60.0).
    max_delay: float = 60.0
    #: Attempts in a row before giving up, the first attempt included; ``None`` (default):
    #: no limit. Reset together with the delays (see ``reset_after``).
    max_attempts: int | None = None
    #: Seconds after which no new attempt starts; ``None`` (default): no limit. Measured
    #: from the start of ``run_reconnecting``, or from the end of the last connection that
    #: stayed open ``reset_after`` seconds.
    max_elapsed: float | None = None
    #: A connection that stayed open at least this long, seconds, resets the attempt count
    #: and the elapsed time: its loss is treated as a first failure (default 60.0).
    reset_after: float = 60.0
    #: The random source of the jitter, keyword-only (default: a fresh ``random.Random()``);
    #: pass a seeded ``random.Random(seed)`` for reproducible delays. Not for security.
    rng: random.Random = field(
        default_factory=random.Random, repr=False, compare=False, kw_only=True
    )

    def __post_init__(self) -> None:
        _number("initial_delay", self.initial_delay)
        _number("max_delay", self.max_delay)
        _number("max_elapsed", self.max_elapsed, allow_none=True)
        _number("reset_after", self.reset_after)
        multiplier = _number("multiplier", self.multiplier)
        if multiplier is not None and multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {multiplier!r}")
        for name in ("initial_delay", "max_delay"):
            if math.isinf(getattr(self, name)):
                raise ValueError(f"{name} must be finite")
        attempts = self.max_attempts
        if attempts is not None:
            if isinstance(attempts, bool) or not isinstance(attempts, int):
                raise TypeError(f"max_attempts must be an int or None, not {attempts!r}")
            if attempts < 1:
                raise ValueError(f"max_attempts must be at least 1, not {attempts}")
        if not isinstance(self.rng, random.Random):
            raise TypeError("rng must be a random.Random")

    def should_retry(self, exc: BaseException) -> bool:
        """Whether the failure ``exc`` is worth another attempt.

        A closed connection (:class:`ConnectionClosed`) is judged by its close code alone:
        retried for the codes in :data:`~trio_mws.retry.RETRIED_CLOSE_CODES` (1006 is a
        connection lost without a close frame), never for :class:`MessageTooBig` or any other
        code. A failed opening: never for certificate errors, addresses refused by
        ``network_access``, redirect failures and responses that are not valid WebSocket
        upgrades; an HTTP answer is retried for 408, 429 and 5xx
        only; otherwise the status decides (:data:`~trio_mws.retry.RETRIED_STATUSES`).
        Anything else (a bug, a ``ValueError``) is never retried.
        """
        if isinstance(exc, ConnectionClosed):  # MessageTooBig included: code 1009
            return exc.code in RETRIED_CLOSE_CODES
        if not isinstance(exc, WebSocketError) or isinstance(
            exc, CertificateError | NetworkAccessDenied
        ):
            return False
        if exc.status in _FINAL_STATUSES:
            return False
        if isinstance(exc, HandshakeError) and exc.status_code is not None:
            code = exc.status_code
            return code in (408, 429) or 500 <= code <= 599
        return exc.status in RETRIED_STATUSES

    def next_delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait before the next attempt, after ``attempt`` failed attempts in a
        row (1 before the first retry) that ended with ``exc``.

        Drawn from ``rng`` with full jitter, never above ``max_delay``; at least the
        ``Retry-After`` of a 429 or 503 answer (delta-seconds or HTTP-date) if it is valid.
        """
        exponent = max(0, attempt - 1)
        try:
            bound = self.initial_delay * self.multiplier**exponent
        except OverflowError:  # a very long run of failures: the bound is max_delay anyway
            bound = self.max_delay
        delay = self.rng.uniform(0.0, min(self.max_delay, bound))
        asked = _retry_after_of(exc)
        if asked is not None:
            delay = max(delay, asked)
        return min(self.max_delay, delay)


def _retry_after_of(exc: BaseException) -> float | None:
    """The ``Retry-After`` of a 429 or 503 :class:`HandshakeError` in seconds, or ``None``
    (no such answer, no header, or a value that is not valid)."""
    if not isinstance(exc, HandshakeError) or exc.status_code not in _RETRY_AFTER_STATUS_CODES:
        return None
    for name, value in exc.headers:
        if name.lower() == "retry-after":
            return parse_retry_after(value, time.time())  # first one wins
    return None
