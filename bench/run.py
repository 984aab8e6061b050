"""Run the whole benchmark suite and write ``bench/results/latest.md`` and ``ratios.png``.

Usage (from the repository root)::

    python -m bench [--quick] [--rounds N] [--only x,y] [--clients a,b] [--server-impl auto]
    python bench/run.py ...

One echo server process is started (see :mod:`bench.server`); every (client, workload)
measurement runs in a fresh ``python -m bench.client`` process. Each round runs every workload
once per client, in an order rotated per round so that machine noise is spread over clients.
Figures are medians over the rounds; ratios are to websockets asyncio, aiohttp and
websockets.trio from the same rounds, and :mod:`bench.targets` says which targets are met.
A full default run writes ``bench/results/``; a subset (``--only``, ``--clients``, ``--quick``,
``--set``) writes ``bench/results/subset/`` unless ``--out`` says otherwise.
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
from bench.workloads import WORKLOADS, Params, workload_key

RESULTS = REPO / "bench" / "results"
DEFAULT_CLIENTS = (
    "trio_mws",
    "websockets_asyncio",
    "aiohttp",
    "websockets_trio",
    "trio_websocket",
    "raw",
    "trio_mws_partial",
)
CLIENT_TIMEOUT = 120.0
#: Distributions whose versions the report lists.
VERSIONED = (
    "trio",
    "wsproto",
    "websockets",
    "trio-websocket",
    "aiohttp",
    "picows",
    "uvloop",
)
#: Background load (in cores) above which the machine is not quiet enough to measure.
QUIET = 0.15


@dataclass(frozen=True)
class Layout:
    """Which CPU each process is pinned to (``None``: not pinned)."""

    server: int | None = None
    client: int | None = None

    @classmethod
    def choose(cls, pin: bool) -> Layout:
        """Server on the first allowed CPU, clients on the second (when there are two)."""
        cpus = sorted(os.sched_getaffinity(0))
        if not pin or len(cpus) < 2:
            return cls()
        return cls(server=cpus[0], client=cpus[1])

    def cpu_for(self, workload: str) -> int | None:
        """The CPU a client of ``workload`` runs on (the server's for same-core workloads)."""
        return self.server if WORKLOADS[workload].core == "server" else self.client

    def describe(self) -> str:
        """One line for the report."""
        if self.server is None:
            return "processes not pinned (the same-core latency row is then not same-core)"
        return (
            f"server pinned to CPU {self.server}, clients to CPU {self.client} (the "
            f"same-core latency row: CPU {self.server})"
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
    asyncio_loop: str,
) -> dict[str, Any]:
    """Run one measurement in a fresh process and return its parsed JSON result."""
    cmd = [sys.executable, "-m", "bench.client", client, workload, "--server", json.dumps(server)]
    cmd += ["--asyncio-loop", asyncio_loop, *cpu_args(cpu)]
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
            "websockets_trio": "import websockets.trio.client",
            "websockets_asyncio": "import websockets.asyncio.client",
            "aiohttp": "import aiohttp",
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


def _names(value: str, known: dict[str, Any], normalise: Callable[[str], str]) -> list[str]:
    """Comma-separated names, normalised and checked against ``known``."""
    names = [normalise(n) for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def _machine_load() -> dict[str, Any]:
    """Load averages (1, 5, 15 min) and the other processes' CPU use over one second."""
    return {"loadavg": os.getloadavg(), "busy_cores": background_load()}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description="Run the trio_mws benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="short smoke run (1 round)")
    parser.add_argument(
        "--rounds", "--runs", type=int, dest="rounds", help="rounds (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--only",
        "--workloads",
        dest="only",
        type=lambda v: _names(v, WORKLOADS, workload_key),
        help=f"comma-separated workloads (default all: {','.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--clients",
        type=lambda v: _names(v, CLIENTS, lambda n: n.strip().replace("-", "_")),
        help=f"comma-separated clients (default all: {','.join(DEFAULT_CLIENTS)})",
    )
    parser.add_argument("--server-impl", choices=("auto", "picows", "websockets"), default="auto")
    parser.add_argument(
        "--asyncio-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of the asyncio clients (default: the standard library's)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--out", type=Path, help="results directory (default bench/results, subsets: .../subset)"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the server and clients to CPUs"
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
    layout = Layout.choose(not args.no_pin)
    rounds = args.rounds or (1 if args.quick else 3)
    workloads = args.only or list(WORKLOADS)
    subset = bool(args.only or args.clients or args.quick or args.set)
    out = args.out or (RESULTS / "subset" if subset else RESULTS)
    clients, errors = available_clients(args.clients or list(DEFAULT_CLIENTS))
    for note in errors:
        print(f"note: {note}", file=sys.stderr)
    pairs = plan(clients, workloads)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        w: {c: [] for c in clients if (w, c) in pairs} for w in workloads
    }
    load = wait_quiet(args.wait_quiet)
    if load > QUIET:
        print(f"warning: other processes keep {load:.0%} of a CPU busy; results will be noisy")
    load_before = {"loadavg": os.getloadavg(), "busy_cores": load}
    started = time.monotonic()
    retried = 0
    with echo_server(args.server_impl, layout.server) as server:
        print(f"echo server: {server['impl']} on {server['loop']} (pid {server['pid']})")
        print(layout.describe())
        headroom = run_headroom(server, args.quick, layout.client)
        for round_no in range(rounds):
            if round_no and args.wait_quiet:
                wait_quiet(args.wait_quiet)
            for workload in workloads:
                order = [c for c in clients if (workload, c) in pairs]
                shift = round_no % max(1, len(order))
                for client in order[shift:] + order[:shift]:
                    measure = functools.partial(
                        run_client,
                        client=client,
                        workload=workload,
                        server=server,
                        quick=args.quick,
                        overrides=args.set,
                        cpu=layout.cpu_for(workload),
                        asyncio_loop=args.asyncio_loop,
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
                        f"[{time.monotonic() - started:6.1f}s] round {round_no + 1}/{rounds} "
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
    elapsed = time.monotonic() - started
    params = Params.quick() if args.quick else Params()
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in VERSIONED},
        "server": f"{server['impl']} on {server['loop']}",
        "asyncio_loop": args.asyncio_loop,
        "layout": layout.describe(),
        "runs": rounds,
        "params": params.describe() + (f"; overrides {' '.join(args.set)}" if args.set else ""),
        "server_headroom": headroom,
        "background_load": load,
        "load_before": load_before,
        "load_after": _machine_load(),
        "retried": retried,
        "errors": errors,
        "elapsed_s": elapsed,
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
    }
    rows = report.aggregate(results)
    text = report.markdown(rows, meta)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(text)
    document = {"meta": meta, "targets": report.target_rows(rows), "results": results}
    (out / "latest.json").write_text(json.dumps(document, indent=1))
    charted = report.chart(rows, out / "ratios.png")
    print()
    print(text)
    print(f"wrote {out / 'latest.md'}" + (f" and {out / 'ratios.png'}" if charted else ""))
    print(f"total {elapsed:.0f}s")
    return 1 if errors and not rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
