"""Where the time of an opening went: ``information.timings`` and ``ConnectError.timings``."""

from __future__ import annotations

from dataclasses import dataclass

import trio

__all__ = ["ConnectTimings", "TimingRecorder"]


@dataclass(frozen=True, slots=True)
class ConnectTimings:
    """Seconds spent in each stage of opening a connection (trio's clock).

    A stage that did not run is ``None`` (no DNS for an IP address or a Unix socket, no proxy
    for a direct connection, no TLS for ``ws://``). When the opening made several attempts
    (redirects, a 401 answered with credentials, a 407 from a proxy), each stage is the sum
    over all of them. On a failed opening, the stages reached so far.
    """

    #: ``float`` seconds resolving host names (the server's, or the proxy's), or ``None``.
    dns: float | None = None
    #: ``float`` seconds establishing TCP (or Unix socket) connections, or ``None``.
    tcp: float | None = None
    #: ``float`` seconds negotiating with a proxy (TLS to an ``https://`` proxy, ``CONNECT``
    #: or SOCKS5) after its TCP connection, or ``None``.
    proxy: float | None = None
    #: ``float`` seconds in the TLS handshake and certificate validation with the server,
    #: or ``None``.
    tls: float | None = None
    #: ``float`` seconds in the HTTP upgrade (request sent, response read), or ``None``.
    handshake: float | None = None
    #: ``float`` seconds from the start of ``connect`` to its end (success or failure).
    total: float = 0.0


_STAGES = ("dns", "tcp", "proxy", "tls", "handshake")


class TimingRecorder:
    """Accumulates stage durations during one opening (package-internal)."""

    __slots__ = ("_spent", "_start")

    def __init__(self) -> None:
        self._start = trio.current_time()
        self._spent: dict[str, float] = {}

    def stage(self, name: str) -> _Stage:
        """Add the time spent in the ``with`` block to stage ``name``, also when it fails."""
        assert name in _STAGES, name
        return _Stage(self._spent, name)

    def result(self) -> ConnectTimings:
        """The timings so far, with the total up to now."""
        return ConnectTimings(
            **{name: self._spent.get(name) for name in _STAGES},
            total=trio.current_time() - self._start,
        )


class _Stage:
    """One ``with timings.stage(name)`` block: a plain class, not a generator-based context
    manager, which costs a generator and several calls more on every connect."""

    __slots__ = ("_name", "_spent", "_start")

    def __init__(self, spent: dict[str, float], name: str) -> None:
        self._spent = spent
        self._name = name
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = trio.current_time()

    def __exit__(self, *exc_info: object) -> None:
        spent = self._spent
        spent[self._name] = spent.get(self._name, 0.0) + trio.current_time() - self._start
