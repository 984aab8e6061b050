"""Profile one workload of trio_mws (by default) to find its hot spots.

Starts the bench echo server in its own process, runs the workload in this process with
cProfile (or pyinstrument with ``--pyinstrument``) switched on for the timed section only,
and prints the top functions with their cost per message (round trip, connection).

Usage (from the repository root)::

    python -m bench.profile_client pipelined            # top 15 by tottime
    python -m bench.profile_client large --top 25 --sort cumulative
    python -m bench.profile_client pipelined-partial    # PARTIAL_MESSAGE mode
    python -m bench.profile_client latency --set latency_count=20000 --save /tmp/lat.prof
    python -m bench.profile_client wss-pipelined --pyinstrument
    python -m bench.profile_client wss-large
    python -m bench.profile_client compressed --client websockets_asyncio   # a peer

cProfile uses wall time by default (cheap to read; ``--timer cpu`` reads the CPU clock, which
is a slow system call on some VMs and then inflates every call several times). Time spent
waiting in epoll is reported apart, not as a hot spot. The profiler inflates the cost of
small functions: compare relative figures only. A saved profile opens with
``python -m pstats FILE`` or snakeviz.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as ``python bench/profile_client.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import workloads
from bench.client import make_params, run_one
from bench.clients import CLIENTS
from bench.procstat import pin_to_cpu
from bench.server import REPO, echo_server

#: The event loop's wait for I/O: idle time, not work.
_IDLE = ("~", 0, "<method 'poll' of 'select.epoll' objects>")


class _PyinstrumentHook:
    """Adapts pyinstrument's Profiler to the enable/disable hook interface."""

    def __init__(self) -> None:
        from pyinstrument import Profiler

        self.profiler = Profiler(interval=0.0001)

    def enable(self) -> None:
        self.profiler.start()

    def disable(self) -> None:
        self.profiler.stop()


def top_functions(
    profile: cProfile.Profile, sort: str, top: int, per: int, timer_name: str = "wall"
) -> str:
    """Format the ``top`` functions by ``sort``, adding µs per op (``per`` messages...)."""
    stats = pstats.Stats(profile)
    stats.sort_stats(sort)
    entries = stats.stats  # type: ignore[attr-defined]
    keys = [k for k in stats.fcn_list if k != _IDLE][:top]  # type: ignore[attr-defined]
    idle = entries[_IDLE][2] if _IDLE in entries else 0.0
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values()) - idle
    lines = [
        f"busy time {total:.3f} s over {per:,} ops = {total / per * 1e6:.2f} µs/op "
        f"({timer_name} time, with profiler overhead); idle in epoll {idle:.3f} s",
        "",
        f"{'ncalls':>10} {'tottime':>8} {'µs/op':>7} {'%':>5} {'cumtime':>8} {'µs/op':>7}"
        "  function",
    ]
    for key in keys:
        _cc, ncalls, tottime, cumtime, _callers = entries[key]
        filename, line, name = key
        where = f"{_short(filename)}:{line}({name})" if line else name
        lines.append(
            f"{ncalls:>10,} {tottime:8.3f} {tottime / per * 1e6:7.2f} "
            f"{tottime / total:5.1%} {cumtime:8.3f} {cumtime / per * 1e6:7.2f}  {where}"
        )
    return "\n".join(lines)


def by_package(profile: cProfile.Profile, per: int) -> str:
    """Total own time per top-level package (``builtins`` for C functions), µs/op."""
    totals: dict[str, float] = {}
    entries = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for key, (_cc, _nc, tottime, _ct, _callers) in entries.items():
        if key == _IDLE:
            continue
        filename, line, _name = key
        package = _short(filename).split("/", 1)[0].split(".", 1)[0] if line else "builtins"
        totals[package] = totals.get(package, 0.0) + tottime
    total = sum(totals.values()) or 1.0
    parts = sorted(totals.items(), key=lambda item: -item[1])
    return "own time by package: " + ", ".join(
        f"{name} {t / per * 1e6:.1f} µs/op ({t / total:.0%})" for name, t in parts[:8]
    )


def _short(filename: str) -> str:
    """Path from the package root (``stdlib/...`` for the standard library)."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if str(REPO) + "/" in filename:
        return filename.split(str(REPO) + "/", 1)[1]
    if "/lib/python3" in filename:
        return "stdlib/" + filename.rsplit("/", 1)[1]
    return filename


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Profile one bench workload (trio_mws).")
    parser.add_argument(
        "workload", type=workloads.workload_key, choices=sorted(workloads.WORKLOADS), nargs="?"
    )
    parser.add_argument("--client", choices=sorted(CLIENTS), help="default: trio_mws")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--sort", default="tottime", help="pstats key (tottime, cumulative...)")
    parser.add_argument("--quick", action="store_true", help="smaller workload sizes")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--save", type=Path, help="also dump the cProfile stats here")
    parser.add_argument(
        "--timer",
        choices=("cpu", "wall"),
        default="wall",
        help="cProfile clock: wall time (default) or CPU time (slow to read on some VMs)",
    )
    parser.add_argument("--pyinstrument", action="store_true", help="use pyinstrument")
    parser.add_argument("--server-impl", choices=("auto", "picows", "websockets"), default="auto")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    args = parser.parse_args(argv)
    workload = args.workload or "pipelined"
    spec = workloads.WORKLOADS[workload]
    client = args.client or (spec.only[0] if spec.only else "trio_mws")

    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    with echo_server(args.server_impl, cpus[0] if pin else None) as server:
        pin_to_cpu((cpus[0] if spec.core == "server" else cpus[1]) if pin else None)
        params = make_params(args.quick, args.set, server["cpu_port"])
        timer = time.process_time if args.timer == "cpu" else time.perf_counter
        hook: Any = _PyinstrumentHook() if args.pyinstrument else cProfile.Profile(timer)
        workloads.TIMED_SECTION_HOOK = hook
        try:
            result = run_one(client, workload, server, params)
        finally:
            workloads.TIMED_SECTION_HOOK = None

    print(
        f"{CLIENTS[client].label} {workload}: {result['value']:,.1f} {spec.unit} under the "
        f"profiler; client CPU {result['client_cpu']:.0%}, "
        f"server CPU {result.get('server_cpu', 0):.0%}"
    )
    if args.pyinstrument:
        print(hook.profiler.output_text(unicode=True, color=False, show_all=False))
        return
    per = int(result["count"])
    print(f"client CPU per {spec.op} under the profiler: {result['client_cpu_us_per_op']:.1f} µs")
    print(top_functions(hook, args.sort, args.top, per, args.timer))
    print()
    print(by_package(hook, per))
    if args.save:
        hook.dump_stats(str(args.save))
        print(f"\nsaved {args.save}")


if __name__ == "__main__":
    main()
