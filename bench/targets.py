"""The performance targets of issue 7 (scope 5), checked by the report.

Ratios are normalised so that higher is better everywhere: throughput is trio_mws / baseline,
and for the workloads where lower is better (memory, CPU per message) it is baseline /
trio_mws. A target either asks for a ratio to a baseline client, or bounds the value itself.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The client the targets are about.
SUBJECT = "trio_mws"


@dataclass(frozen=True)
class Target:
    """One target row: ``workload`` of :data:`SUBJECT` against ``baseline`` (or a bound)."""

    workload: str
    #: Client key whose figure the ratio uses; None for a bound on the value itself.
    baseline: str | None = None
    #: Lowest acceptable ratio (higher-is-better normalised) to ``baseline``.
    min_ratio: float | None = None
    #: Highest acceptable value, in the workload's unit (for a bound).
    max_value: float | None = None

    def describe(self, baseline_label: str | None, unit: str) -> str:
        """The target as text, e.g. ``≥ 1.0x aiohttp`` or ``≤ 8 KiB/conn``."""
        if self.max_value is not None:
            return f"≤ {self.max_value:g} {unit}"
        return f"≥ {self.min_ratio:.1f}x {baseline_label}"

    def met(self, value: float, ratio: float | None) -> bool | None:
        """Whether the target is met (None when the baseline figure is missing)."""
        if self.max_value is not None:
            return value <= self.max_value
        if ratio is None or self.min_ratio is None:
            return None
        return ratio >= self.min_ratio


TARGETS = (
    Target("pipelined", "aiohttp", min_ratio=1.0),
    Target("latency", "websockets_asyncio", min_ratio=1.1),
    Target("large", "websockets_asyncio", min_ratio=1.3),
    Target("handshake", "aiohttp", min_ratio=1.0),
    Target("memory", max_value=8.0),
    Target("compressed", "websockets_asyncio", min_ratio=1.0),
    Target("wss-pipelined", "websockets_asyncio", min_ratio=1.0),
    Target("wss-large", "websockets_asyncio", min_ratio=1.0),
)
