"""Run the whole benchmark suite and write ``bench/results/latest.md`` and ``ratios.png``.

Usage (from the repository root)::

    python -m bench [--quick] [--runs N] [--clients a,b] [--workloads x,y] [--server-impl auto]
    python bench/run.py ...

One echo server process is started (see :mod:`bench.server`); every (client, workload)
measurement runs in a fresh ``python -m bench.client`` process. Each round runs every workload
once per client, in an order rotated per round so that machine noise is spread over clients.
Figures are medians over the rounds; ratios are to websockets.trio from the same rounds.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as ``python bench/run.py``: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from bench import report
from bench.clients import CLIENTS
from bench.procstat import background_load
from bench.server import REPO, cpu_args, echo_server, subprocess_env
from bench.workloads import WORKLOADS, Params

RESULTS = REPO / "bench" / "results"
DEFAULT_CLIENTS = ("trio_mws", "websockets", "trio_websocket", "raw_tcp", "trio_mws_partial")
CLIENT_TIMEOUT = 120.0
#: Background load (in cores) above which the machine is not quiet enough to measure.
QUIET = 0.15


@dataclass(frozen=True)
class Layout:
    """Which CPU each process is pinned to (``None``: not pinned)."""

    server: int | None = None
    client: int | None = None
    latency_client: int | None = None

    @classmethod
    def choose(cls, pin: bool, latency_core: str) -> Layout:
        """Server on the first allowed CPU, clients on the second (latency: see ``--help``)."""
        cpus = sorted(os.sched_getaffinity(0))
        if not pin or len(cpus) < 2:
            return cls()
        latency = cpus[0] if latency_core == "same" else cpus[1]
        return cls(server=cpus[0], client=cpus[1], latency_client=latency)

    def describe(self) -> str:
        """One line for the report."""
        if self.server is None:
            return "processes not pinned"
        where = "the same CPU as" if self.latency_client == self.server else "another CPU than"
        return (
            f"server pinned to CPU {self.server}, clients to CPU {self.client}; latency clients "
            f"on {where} the server"
        )


def _error_tail(stderr: str) -> str:
    """Last meaningful line of a traceback (skipping exception-group box drawing)."""
    for line in reversed(stderr.splitlines()):
        text = line.strip().lstrip("|").strip()
        if text and not text.startswith("+"):
            return text
    return "?"


def run_client(
    *,
    client: str,
    workload: str,
    server: dict[str, Any],
    quick: bool,
    overrides: list[str],
    cpu: int | None,
) -> dict[str, Any]:
    """Run one measurement in a fresh process and return its parsed JSON result."""
    cmd = [
        sys.executable,
        "-m",
        "bench.client",
        client,
        workload,
        "--ws-url",
        f"ws://127.0.0.1:{server['ws_port']}/",
        "--tcp-url",
        f"tcp://127.0.0.1:{server['tcp_port']}",
        "--server-cpu-port",
        str(server["cpu_port"]),
        *cpu_args(cpu),
    ]
    if quick:
        cmd.append("--quick")
    for item in overrides:
        cmd += ["--set", item]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        tail = _error_tail(proc.stderr)
        raise RuntimeError(f"{client} {workload}: exit {proc.returncode}: {tail}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_headroom(server: dict[str, Any], quick: bool, cpu: int | None) -> dict[str, Any] | None:
    """Measure the server with a picows asyncio client (None if picows is missing)."""
    if server["impl"] != "picows":
        return None
    count = "50000" if quick else "200000"
    url = f"ws://127.0.0.1:{server['ws_port']}/"
    cmd = [sys.executable, "-m", "bench.headroom", url, str(server["cpu_port"]), "--count", count]
    cmd += cpu_args(cpu)
    proc = subprocess.run(
        cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def available_clients(wanted: list[str]) -> tuple[list[str], list[str]]:
    """Split ``wanted`` into importable clients and notes about skipped ones."""
    ok, notes = [], []
    for key in wanted:
        check = {
            "trio_mws": "import trio_mws; trio_mws.open_message_websocket",
            "trio_mws_partial": (
                "import trio_mws; trio_mws.MessageWebSocketReceiveMode.PARTIAL_MESSAGE"
            ),
            "websockets": "import websockets.trio.client",
            "trio_websocket": "import trio_websocket",
        }.get(key, "pass")
        probe = subprocess.run(
            [sys.executable, "-c", check],
            cwd=REPO,
            env=subprocess_env(),
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            ok.append(key)
        else:
            notes.append(f"skipped {CLIENTS[key].label}: `{check}` failed")
    return ok, notes


def wait_quiet(timeout: float) -> float:
    """Wait up to ``timeout`` seconds for the machine's other load to drop below QUIET.

    Returns the last background load measured (in cores).
    """
    deadline = time.monotonic() + timeout
    load = background_load()
    while load > QUIET and time.monotonic() < deadline:
        print(f"waiting for a quiet machine: other processes use {load:.0%} of a CPU")
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
        load = background_load()
    return load


def measure_quietly(
    measure: Callable[[], dict[str, Any]], retries: int, wait: float
) -> dict[str, Any]:
    """Run ``measure``; redo it (after waiting for quiet) while other load spoiled it.

    Keeps the last attempt whatever its load, with ``retries`` set to the number of redos.
    """
    result = measure()
    attempt = 0
    while result.get("other_cpu", 0.0) > QUIET and attempt < retries:
        attempt += 1
        print(f"  noisy sample (other CPU {result['other_cpu']:.0%}): measuring again")
        wait_quiet(max(wait, 30.0))
        result = measure()
    result["retries"] = attempt
    return result


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def plan(clients: list[str], workloads: list[str]) -> list[tuple[str, str]]:
    """(workload, client) pairs of one round, before rotation."""
    pairs = []
    for workload in workloads:
        spec = WORKLOADS[workload]
        for client in clients:
            if spec.only is not None:
                if client in spec.only:
                    pairs.append((workload, client))
            elif client != "trio_mws_partial":
                pairs.append((workload, client))
    return pairs


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description="Run the trio_mws benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="short smoke run (1 round)")
    parser.add_argument("--runs", type=int, help="rounds (default 5, or 1 with --quick)")
    parser.add_argument("--clients", default=",".join(DEFAULT_CLIENTS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--server-impl", choices=("auto", "picows", "websockets"), default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the server and clients to CPUs"
    )
    parser.add_argument(
        "--latency-core",
        choices=("same", "other"),
        default="same",
        help="pin latency clients to the server's CPU (default; keeps the VM's noisy "
        "cross-CPU wake-ups out of the round-trip figure) or to the other CPU",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each round, wait up to SECONDS for other processes to go quiet",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="redo a measurement up to this many times (waiting for quiet, at least 30 s) "
        "when other load exceeded 15%% of a CPU during it",
    )
    args = parser.parse_args(argv)
    layout = Layout.choose(not args.no_pin, args.latency_core)
    runs = args.runs or (1 if args.quick else 5)
    workloads = [w for w in args.workloads.split(",") if w]
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    wanted = [c for c in args.clients.split(",") if c]
    for name in wanted:
        if name not in CLIENTS:
            parser.error(f"unknown client {name!r}; known: {', '.join(CLIENTS)}")
    clients, errors = available_clients(wanted)
    for note in errors:
        print(f"note: {note}", file=sys.stderr)
    pairs = plan(clients, workloads)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        w: {c: [] for c in clients if (w, c) in pairs} for w in workloads
    }
    load = wait_quiet(args.wait_quiet)
    if load > QUIET:
        print(f"warning: other processes keep {load:.0%} of a CPU busy; results will be noisy")
    started = time.monotonic()
    retried = 0
    with echo_server(args.server_impl, layout.server) as server:
        print(f"echo server: {server['impl']} on {server['loop']} (pid {server['pid']})")
        print(layout.describe())
        headroom = run_headroom(server, args.quick, layout.client)
        for round_no in range(runs):
            if round_no and args.wait_quiet:
                wait_quiet(args.wait_quiet)
            for workload in workloads:
                order = [c for c in clients if (workload, c) in pairs]
                shift = round_no % max(1, len(order))
                cpu = layout.latency_client if workload == "latency" else layout.client
                for client in order[shift:] + order[:shift]:
                    measure = functools.partial(
                        run_client,
                        client=client,
                        workload=workload,
                        server=server,
                        quick=args.quick,
                        overrides=args.set,
                        cpu=cpu,
                    )
                    try:
                        result = measure_quietly(measure, args.retries, args.wait_quiet)
                    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                        errors.append(f"round {round_no + 1}: {exc}")
                        print(f"error: {exc}", file=sys.stderr)
                        continue
                    results[workload][client].append(result)
                    retried += result.get("retries", 0)
                    print(
                        f"[{time.monotonic() - started:6.1f}s] round {round_no + 1}/{runs} "
                        f"{workload:17} {CLIENTS[client].label:18} "
                        f"{result['value']:12,.1f} {WORKLOADS[workload].unit}"
                        f"  (other CPU {result.get('other_cpu', 0):.0%})",
                        flush=True,
                    )
        if headroom is not None:
            # Probe again at the end; keep the faster of the two.
            again = run_headroom(server, args.quick, layout.client)
            if again and again["value"] > headroom["value"]:
                headroom = again
    params = Params.quick() if args.quick else Params()
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(),
        "versions": {
            d: _version(d) for d in ("trio", "wsproto", "websockets", "trio-websocket", "picows")
        },
        "server": f"{server['impl']} on {server['loop']}",
        "layout": layout.describe(),
        "runs": runs,
        "params": (
            f"latency {params.latency_count} x {params.latency_size} B; pipelined "
            f"{params.pipelined_count:,} x {params.pipelined_size} B; large "
            f"{params.large_count} x {params.large_size // 1024} KiB; handshakes "
            f"{params.handshake_count}; memory {params.memory_connections} connections"
            + (f"; overrides {' '.join(args.set)}" if args.set else "")
        ),
        "server_headroom": headroom,
        "background_load": load,
        "retried": retried,
        "errors": errors,
        "elapsed_s": time.monotonic() - started,
    }
    rows = report.aggregate(results)
    text = report.markdown(rows, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text)
    (args.out / "latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    charted = report.chart(rows, args.out / "ratios.png")
    print()
    print(text)
    print(
        f"wrote {args.out / 'latest.md'}" + (f" and {args.out / 'ratios.png'}" if charted else "")
    )
    print(f"total {time.monotonic() - started:.0f}s")
    return 1 if errors and not rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
