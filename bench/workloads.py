"""The benchmark workloads, generic over :class:`bench.clients.Client` adapters.

Each workload is an async function ``(client, url, params) -> dict`` returning its headline
figure under ``"value"`` (see :data:`WORKLOADS` for units) plus details. Each one warms up
first, then times only the measured section, recording wall time and this process's CPU time
(and, when the server's CPU-time port is given, the server's CPU time over the same
section).
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from bench.clients import Client
from bench.procstat import (
    raise_nofile_limit,
    rss_bytes,
    server_cpu_seconds,
    system_busy_seconds,
)

MIB = 1024 * 1024


@dataclass(frozen=True)
class Workload:
    """Static description of a workload."""

    key: str
    title: str
    unit: str
    #: Label on the chart's x axis.
    short: str
    #: True when a larger value is better (throughput); False for memory.
    higher_is_better: bool = True
    #: Client keys that run this workload (None: every client but the partial-mode one).
    only: tuple[str, ...] | None = None
    #: Workload whose websockets.trio figure is the ratio baseline (default: itself).
    baseline: str | None = None


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("latency", "latency: 32 B text round trips", "msg/s", "latency\n32 B"),
        Workload("pipelined", "pipelined: 64 B binary", "msg/s", "pipelined\n64 B"),
        Workload("large", "large: 1 MiB binary round trips", "MB/s", "large\n1 MiB"),
        Workload("handshake", "handshakes: open + close", "conn/s", "handshakes"),
        Workload(
            "memory",
            "memory per idle connection",
            "KiB/conn",
            "memory/conn\n(inverse)",
            higher_is_better=False,
        ),
        Workload(
            "pipelined_partial",
            "pipelined, PARTIAL_MESSAGE mode",
            "msg/s",
            "pipelined 64 B\nPARTIAL_MESSAGE",
            only=("trio_mws_partial",),
            baseline="pipelined",
        ),
    )
}


@dataclass
class Params:
    """Workload sizes (the ``--quick`` run uses smaller ones)."""

    latency_count: int = 5000
    latency_size: int = 32
    pipelined_count: int = 100_000
    pipelined_size: int = 64
    large_count: int = 100
    large_size: int = MIB
    handshake_count: int = 400
    memory_connections: int = 1000
    server_cpu_port: int | None = None

    @classmethod
    def quick(cls) -> Params:
        """Sizes for a smoke run."""
        return cls(
            latency_count=1000,
            pipelined_count=20_000,
            large_count=20,
            handshake_count=100,
            memory_connections=300,
        )


class TimedSectionHook(Protocol):
    """Something switched on for the timed sections only (e.g. a profiler)."""

    def enable(self) -> None:
        """Called when a timed section starts."""

    def disable(self) -> None:
        """Called when a timed section ends."""


#: Set by :mod:`bench.profile_client` to profile only the timed sections.
TIMED_SECTION_HOOK: TimedSectionHook | None = None


class _Meter:
    """Measures wall, client CPU and (optionally) server CPU time over a ``with`` block."""

    def __init__(self, server_cpu_port: int | None) -> None:
        self.server_cpu_port = server_cpu_port
        self.wall = self.cpu = self.busy = 0.0
        self.server_cpu: float | None = None

    def __enter__(self) -> _Meter:
        self._server0 = server_cpu_seconds(self.server_cpu_port) if self.server_cpu_port else 0.0
        self._busy0 = system_busy_seconds()
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        if TIMED_SECTION_HOOK is not None:
            TIMED_SECTION_HOOK.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if TIMED_SECTION_HOOK is not None:
            TIMED_SECTION_HOOK.disable()
        self.wall = time.perf_counter() - self._wall0
        self.cpu = time.process_time() - self._cpu0
        if self.server_cpu_port:
            self.server_cpu = server_cpu_seconds(self.server_cpu_port) - self._server0
        self.busy = system_busy_seconds() - self._busy0

    def result(self, value: float, **extra: Any) -> dict[str, Any]:
        """Build a workload result: headline value plus CPU usage over the timed section."""
        out: dict[str, Any] = {
            "value": value,
            "elapsed_s": self.wall,
            "client_cpu": self.cpu / self.wall if self.wall else 0.0,
        }
        if self.server_cpu is not None and self.wall:
            out["server_cpu"] = self.server_cpu / self.wall
            # Everything else the machine did meanwhile (other processes, hypervisor steal).
            other = self.busy - self.cpu - self.server_cpu
            out["other_cpu"] = max(0.0, other / self.wall)
        out.update(extra)
        return out


def _check_echo(client: Client, message: Any, expected: bytes | str) -> None:
    """Raise if ``message`` does not carry ``expected`` (checked once per workload)."""
    got = client.payload(message)
    if not isinstance(got, str):
        got = bytes(got)
        if isinstance(expected, str):
            expected = expected.encode()
    if got != expected:
        raise AssertionError(f"{client.label}: bad echo ({len(got)} vs {len(expected)} bytes)")


def _text_payload(client: Client, size: int) -> bytes | str:
    text = ("0123456789abcdef" * (size // 16 + 1))[:size]
    return text if client.websocket else text.encode()


async def latency(client: Client, url: str, p: Params) -> dict[str, Any]:
    """Sequential round trips of a small text message: msg/s and p50/p99 in µs."""
    payload = _text_payload(client, p.latency_size)
    samples = [0] * p.latency_count
    clock = time.perf_counter_ns
    async with client.connect(url) as conn:
        send, recv = client.bind(conn, p.latency_size)
        await send(payload)
        _check_echo(client, await recv(), payload)
        for _ in range(min(500, p.latency_count)):
            await send(payload)
            await recv()
        with _Meter(p.server_cpu_port) as m:
            for i in range(p.latency_count):
                t0 = clock()
                await send(payload)
                await recv()
                samples[i] = clock() - t0
    samples.sort()
    n = len(samples)
    return m.result(
        p.latency_count / m.wall,
        p50_us=samples[n // 2] / 1000,
        p99_us=samples[min(n - 1, (n * 99) // 100)] / 1000,
    )


async def _pipelined(client: Client, conn: Any, payload: bytes, count: int) -> None:
    send, _ = client.bind(conn, len(payload))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.receive_many, conn, count, len(payload))
        for _ in range(count):
            await send(payload)


async def pipelined(client: Client, url: str, p: Params) -> dict[str, Any]:
    """Send ``pipelined_count`` binary messages while another task receives the echoes."""
    payload = os.urandom(p.pipelined_size)
    async with client.connect(url) as conn:
        send, recv = client.bind(conn, p.pipelined_size)
        await send(payload)
        if client.key != "trio_mws_partial":
            _check_echo(client, await recv(), payload)
        else:
            await client.receive_many(conn, 1, p.pipelined_size)
        await _pipelined(client, conn, payload, min(5000, p.pipelined_count))
        with _Meter(p.server_cpu_port) as m:
            await _pipelined(client, conn, payload, p.pipelined_count)
    return m.result(p.pipelined_count / m.wall, messages=p.pipelined_count)


async def large(client: Client, url: str, p: Params) -> dict[str, Any]:
    """Round trips of large binary messages: MB/s of payload echoed (10**6 bytes)."""
    payload = os.urandom(p.large_size)
    async with client.connect(url) as conn:
        send, recv = client.bind(conn, p.large_size)
        await send(payload)
        _check_echo(client, await recv(), payload)
        for _ in range(2):
            await send(payload)
            await recv()
        with _Meter(p.server_cpu_port) as m:
            for _ in range(p.large_count):
                await send(payload)
                await recv()
    return m.result(p.large_count * p.large_size / m.wall / 1e6, messages=p.large_count)


async def handshake(client: Client, url: str, p: Params) -> dict[str, Any]:
    """Open and close connections one after the other: conn/s."""
    for _ in range(min(50, p.handshake_count)):
        async with client.connect(url):
            pass
    with _Meter(p.server_cpu_port) as m:
        for _ in range(p.handshake_count):
            async with client.connect(url):
                pass
    return m.result(p.handshake_count / m.wall, connections=p.handshake_count)


async def memory(client: Client, url: str, p: Params) -> dict[str, Any]:
    """RSS increase of this process per idle open connection (KiB/conn)."""
    raise_nofile_limit(p.memory_connections * 2 + 256)
    release = trio.Event()

    async def hold(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with client.connect(url):
            task_status.started()
            await release.wait()

    # Warm up: imports, caches and a few connections' worth of allocator arenas.
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            await nursery.start(hold)
        release.set()
    release = trio.Event()
    gc.collect()
    await trio.sleep(0.05)
    rss0 = rss_bytes()
    with _Meter(p.server_cpu_port) as m:
        async with trio.open_nursery() as nursery:
            for _ in range(p.memory_connections):
                await nursery.start(hold)
            await trio.sleep(0.2)  # let background tasks settle into their idle state
            gc.collect()
            rss1 = rss_bytes()
            release.set()
    per_conn = (rss1 - rss0) / 1024 / p.memory_connections
    return m.result(per_conn, connections=p.memory_connections, rss_before_mib=rss0 / MIB)


RUNNERS = {
    "latency": latency,
    "pipelined": pipelined,
    "pipelined_partial": pipelined,
    "large": large,
    "handshake": handshake,
    "memory": memory,
}
