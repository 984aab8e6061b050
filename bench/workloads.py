"""The benchmark workloads, generic over :class:`bench.clients.Client` adapters.

Each runner is an async function ``(client, endpoint, params, count) -> dict`` returning its
headline figure under ``"value"`` (see :data:`WORKLOADS` for units) plus details. Each one
warms up first, then times only the measured section, recording wall time and the client
process's CPU time (and, when the server's CPU-time port is given, the server's CPU time
over the same section). Runners use the client's own event loop (:mod:`bench.runtime`).
"""

from __future__ import annotations

import gc
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bench.clients import Client, Endpoint
from bench.procstat import (
    raise_nofile_limit,
    rss_bytes,
    server_cpu_seconds,
    system_busy_seconds,
)
from bench.runtime import Event, TaskGroup

MIB = 1024 * 1024


@dataclass(frozen=True)
class Workload:
    """Static description of a workload."""

    #: Name on the command line (``--only``).
    key: str
    title: str
    #: Unit of the headline value.
    unit: str
    #: Label on the chart's x axis.
    short: str
    #: Key of the runner in :data:`RUNNERS`.
    runner: str
    #: :class:`Params` field holding the count of the timed section.
    count_param: str
    #: What one unit of the count is (client CPU is reported per one of these).
    op: str
    #: Server endpoint: ``ws`` (plain), ``wss`` (TLS) or ``deflate`` (permessage-deflate).
    endpoint: str = "ws"
    #: ``client``: the client runs on the clients' CPU; ``server``: on the server's CPU.
    core: str = "client"
    #: True when a larger value is better (throughput); False for memory and CPU cost.
    higher_is_better: bool = True
    #: Client keys that run this workload (None: every client but the partial-mode one).
    only: tuple[str, ...] | None = None
    #: Workload whose baseline clients' figures the ratios use (default: itself).
    baseline: str | None = None


_COMPRESSING = ("trio_mws", "websockets_asyncio", "aiohttp", "websockets_trio")

WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload(
            "latency",
            "latency: 32 B text round trips (client and server on separate CPUs)",
            "msg/s",
            "latency\n32 B",
            "latency",
            "latency_count",
            "round trip",
        ),
        Workload(
            "latency-same-core",
            "latency: 32 B text round trips (client on the server's CPU)",
            "msg/s",
            "latency\nsame CPU",
            "latency",
            "latency_count",
            "round trip",
            core="server",
        ),
        Workload(
            "pipelined",
            "pipelined: 64 B binary",
            "msg/s",
            "pipelined\n64 B",
            "pipelined",
            "pipelined_count",
            "message",
        ),
        Workload(
            "pipelined-partial",
            "pipelined 64 B, PARTIAL_MESSAGE mode",
            "msg/s",
            "pipelined 64 B\nPARTIAL",
            "pipelined",
            "pipelined_count",
            "message",
            only=("trio_mws_partial",),
            baseline="pipelined",
        ),
        Workload(
            "large",
            "large: 1 MiB binary round trips",
            "MB/s",
            "large\n1 MiB",
            "large",
            "large_count",
            "MiB round trip",
        ),
        Workload(
            "handshake",
            "handshakes: open + close",
            "conn/s",
            "handshakes",
            "handshake",
            "handshake_count",
            "connection",
        ),
        Workload(
            "memory",
            "memory per idle connection",
            "KiB/conn",
            "memory/conn",
            "memory",
            "memory_connections",
            "connection",
            higher_is_better=False,
        ),
        Workload(
            "compressed",
            "compressed: 4 KiB JSON text round trips, permessage-deflate, client CPU",
            "µs CPU/msg",
            "deflate 4 KiB\nclient CPU",
            "compressed",
            "compressed_count",
            "round trip",
            endpoint="deflate",
            higher_is_better=False,
            only=_COMPRESSING,
        ),
        Workload(
            "wss-pipelined",
            "wss pipelined: 64 B binary over TLS",
            "msg/s",
            "wss pipelined\n64 B",
            "pipelined",
            "wss_pipelined_count",
            "message",
            endpoint="wss",
        ),
        Workload(
            "wss-large",
            "wss large: 1 MiB binary round trips over TLS",
            "MB/s",
            "wss large\n1 MiB",
            "large",
            "wss_large_count",
            "MiB round trip",
            endpoint="wss",
        ),
        Workload(
            "wss-handshake",
            "wss handshakes: TCP + TLS + open + close",
            "conn/s",
            "wss\nhandshakes",
            "handshake",
            "wss_handshake_count",
            "connection",
            endpoint="wss",
        ),
    )
}


def workload_key(name: str) -> str:
    """Normalise a workload name from the command line (``wss_large`` = ``wss-large``)."""
    return name.strip().replace("_", "-")


@dataclass
class Params:
    """Workload sizes (the ``--quick`` run uses smaller ones)."""

    latency_count: int = 5000
    latency_size: int = 32
    pipelined_count: int = 50_000
    pipelined_size: int = 64
    large_count: int = 60
    large_size: int = MIB
    handshake_count: int = 300
    memory_connections: int = 1000
    compressed_count: int = 2000
    compressed_size: int = 4096
    wss_pipelined_count: int = 30_000
    wss_large_count: int = 40
    wss_handshake_count: int = 100
    server_cpu_port: int | None = None

    @classmethod
    def quick(cls) -> Params:
        """Sizes for a smoke run."""
        return cls(
            latency_count=1000,
            pipelined_count=10_000,
            large_count=15,
            handshake_count=100,
            memory_connections=300,
            compressed_count=500,
            wss_pipelined_count=5000,
            wss_large_count=10,
            wss_handshake_count=50,
        )

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"latency {self.latency_count} x {self.latency_size} B; pipelined "
            f"{self.pipelined_count:,} x {self.pipelined_size} B (wss "
            f"{self.wss_pipelined_count:,}); large {self.large_count} x "
            f"{self.large_size // 1024} KiB (wss {self.wss_large_count}); handshakes "
            f"{self.handshake_count} (wss {self.wss_handshake_count}); memory "
            f"{self.memory_connections} connections; compressed {self.compressed_count} x "
            f"{self.compressed_size} B"
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
    """Measures wall, client CPU and (optionally) server CPU time over a ``with`` block.

    Client CPU is this process's CPU time (``time.process_time``: user + system time of
    every thread of the process), so the server's work never counts.
    """

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

    def result(self, value: float, count: int, **extra: Any) -> dict[str, Any]:
        """Build a workload result: headline value plus CPU usage over the timed section."""
        out: dict[str, Any] = {
            "value": value,
            "count": count,
            "elapsed_s": self.wall,
            "client_cpu": self.cpu / self.wall if self.wall else 0.0,
            "client_cpu_us_per_op": self.cpu / count * 1e6,
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


def _text(client: Client, text: str) -> bytes | str:
    """``text`` as the client sends it: ``str`` for WebSocket clients, bytes for raw TCP."""
    return text if client.websocket else text.encode()


async def latency(client: Client, endpoint: Endpoint, p: Params, count: int) -> dict[str, Any]:
    """Sequential round trips of a small text message: msg/s and p50/p99 in µs."""
    payload = _text(client, ("0123456789abcdef" * (p.latency_size // 16 + 1))[: p.latency_size])
    samples = [0] * count
    clock = time.perf_counter_ns
    async with client.connect(endpoint) as conn:
        send, recv = client.bind(conn, p.latency_size, client.websocket)
        await send(payload)
        _check_echo(client, await recv(), payload)
        for _ in range(min(500, count)):
            await send(payload)
            await recv()
        with _Meter(p.server_cpu_port) as m:
            for i in range(count):
                t0 = clock()
                await send(payload)
                await recv()
                samples[i] = clock() - t0
    samples.sort()
    return m.result(
        count / m.wall,
        count,
        p50_us=samples[count // 2] / 1000,
        p99_us=samples[min(count - 1, (count * 99) // 100)] / 1000,
    )


async def _pipelined(client: Client, conn: Any, payload: bytes, count: int) -> None:
    send, _ = client.bind(conn, len(payload), False)
    async with client.runtime.task_group() as group:
        group.start_soon(client.receive_many, conn, count, len(payload))
        for _ in range(count):
            await send(payload)


async def pipelined(client: Client, endpoint: Endpoint, p: Params, count: int) -> dict[str, Any]:
    """Send ``count`` binary messages while another task receives the echoes: msg/s."""
    payload = os.urandom(p.pipelined_size)
    async with client.connect(endpoint) as conn:
        send, recv = client.bind(conn, p.pipelined_size, False)
        await send(payload)
        if client.key != "trio_mws_partial":
            _check_echo(client, await recv(), payload)
        else:
            await client.receive_many(conn, 1, p.pipelined_size)
        await _pipelined(client, conn, payload, min(5000, count))
        with _Meter(p.server_cpu_port) as m:
            await _pipelined(client, conn, payload, count)
    return m.result(count / m.wall, count)


async def large(client: Client, endpoint: Endpoint, p: Params, count: int) -> dict[str, Any]:
    """Round trips of large binary messages: MB/s of payload echoed (10**6 bytes)."""
    payload = os.urandom(p.large_size)
    async with client.connect(endpoint) as conn:
        send, recv = client.bind(conn, p.large_size, False)
        await send(payload)
        _check_echo(client, await recv(), payload)
        for _ in range(2):
            await send(payload)
            await recv()
        with _Meter(p.server_cpu_port) as m:
            for _ in range(count):
                await send(payload)
                await recv()
    return m.result(count * p.large_size / m.wall / 1e6, count)


async def handshake(client: Client, endpoint: Endpoint, p: Params, count: int) -> dict[str, Any]:
    """Open and close connections one after the other: conn/s."""
    for _ in range(min(50, count)):
        async with client.connect(endpoint):
            pass
    with _Meter(p.server_cpu_port) as m:
        for _ in range(count):
            async with client.connect(endpoint):
                pass
    return m.result(count / m.wall, count)


async def memory(client: Client, endpoint: Endpoint, p: Params, count: int) -> dict[str, Any]:
    """RSS increase of this process per idle open connection (KiB/conn)."""
    raise_nofile_limit(count * 2 + 256)
    rt = client.runtime
    release = rt.event()

    async def hold(opened: Event) -> None:
        async with client.connect(endpoint):
            opened.set()
            await release.wait()

    async def open_all(group: TaskGroup, n: int) -> None:
        # One at a time: each connection is open before the next starts.
        for _ in range(n):
            opened = rt.event()
            group.start_soon(hold, opened)
            await opened.wait()

    # Warm up: imports, caches and a few connections' worth of allocator arenas.
    async with rt.task_group() as group:
        await open_all(group, 20)
        release.set()
    release = rt.event()
    gc.collect()
    await rt.sleep(0.05)
    rss0 = rss_bytes()
    with _Meter(p.server_cpu_port) as m:
        async with rt.task_group() as group:
            await open_all(group, count)
            await rt.sleep(0.2)  # let background tasks settle into their idle state
            gc.collect()
            rss1 = rss_bytes()
            release.set()
    per_conn = (rss1 - rss0) / 1024 / count
    return m.result(per_conn, count, rss_before_mib=rss0 / MIB)


def json_messages(size: int, distinct: int = 64, seed: int = 7) -> list[str]:
    """``distinct`` different JSON documents of exactly ``size`` characters (ASCII).

    Records of ids, names, prices, tags and flags, like an API's updates: they compress to
    about a fifth, as real JSON does, while no two messages are the same.
    """
    rng = random.Random(seed)
    words = [
        "alpha", "beta", "gamma", "delta", "order", "price", "update", "market", "user",
        "account", "status", "active", "pending", "filled", "cancelled", "region", "north",
        "south", "east", "west", "blue", "green", "red", "amber", "silver", "gold",
    ]  # fmt: skip
    messages = []
    for seq in range(distinct):
        items: list[dict[str, Any]] = []
        doc: dict[str, Any] = {"type": "update", "seq": seq, "items": items, "note": ""}
        while len(json.dumps(doc)) < size - 200:
            items.append(
                {
                    "id": rng.randrange(10**9),
                    "name": " ".join(rng.choice(words) for _ in range(2)),
                    "price": round(rng.uniform(1, 1000), 2),
                    "qty": rng.randrange(1, 500),
                    "tags": rng.sample(words, 3),
                    "active": rng.random() < 0.5,
                }
            )
        pad = size - len(json.dumps(doc))
        doc["note"] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(pad))
        text = json.dumps(doc)
        assert len(text) == size
        messages.append(text)
    return messages


async def compressed(client: Client, endpoint: Endpoint, p: Params, count: int) -> dict[str, Any]:
    """Round trips of 4 KiB JSON text over permessage-deflate: client CPU µs per round trip."""
    messages = json_messages(p.compressed_size)
    mask = len(messages) - 1
    async with client.connect(endpoint) as conn:
        send, recv = client.bind(conn, p.compressed_size, True)
        await send(messages[0])
        _check_echo(client, await recv(), messages[0])
        for i in range(min(300, count)):
            await send(messages[i & mask])
            await recv()
        with _Meter(p.server_cpu_port) as m:
            for i in range(count):
                await send(messages[i & mask])
                await recv()
    return m.result(m.cpu / count * 1e6, count, msg_per_s=count / m.wall)


Runner = Callable[[Client, Endpoint, Params, int], Awaitable[dict[str, Any]]]

RUNNERS: dict[str, Runner] = {
    "latency": latency,
    "pipelined": pipelined,
    "large": large,
    "handshake": handshake,
    "memory": memory,
    "compressed": compressed,
}
