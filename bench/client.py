r"""Run one client on one workload and print the result as one JSON line.

Usage::

    python -m bench.client CLIENT WORKLOAD --ws-url ws://127.0.0.1:PORT/ \\
        --tcp-url tcp://127.0.0.1:PORT [--server-cpu-port PORT] [--cpu N] [--quick] \\
        [--set NAME=VALUE ...]

CLIENT is one of :data:`bench.clients.CLIENTS`, WORKLOAD one of :data:`bench.workloads.WORKLOADS`.
``--set`` overrides a :class:`bench.workloads.Params` field, e.g. ``--set large_count=20``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import trio

from bench.clients import CLIENTS
from bench.procstat import pin_to_cpu
from bench.workloads import RUNNERS, WORKLOADS, Params


def make_params(quick: bool, overrides: list[str], server_cpu_port: int | None) -> Params:
    """Build workload parameters from ``--quick`` and ``NAME=VALUE`` overrides."""
    params = Params.quick() if quick else Params()
    fields = {f.name for f in dataclasses.fields(Params)}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in fields or name == "server_cpu_port":
            raise SystemExit(f"unknown parameter {name!r}; known: {sorted(fields)}")
        setattr(params, name, int(value))
    params.server_cpu_port = server_cpu_port
    return params


def run_one(
    client_key: str, workload_key: str, ws_url: str, tcp_url: str, params: Params
) -> dict[str, Any]:
    """Run ``workload_key`` with ``client_key`` in this process and return its result."""
    client = CLIENTS[client_key]
    url = ws_url if client.websocket else tcp_url
    result = trio.run(RUNNERS[workload_key], client, url, params)
    result.update(client=client_key, workload=workload_key)
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Run one benchmark client/workload.")
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--ws-url", required=True)
    parser.add_argument("--tcp-url", required=True)
    parser.add_argument("--server-cpu-port", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    params = make_params(args.quick, args.set, args.server_cpu_port)
    result = run_one(args.client, args.workload, args.ws_url, args.tcp_url, params)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
