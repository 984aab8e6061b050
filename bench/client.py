r"""Run one client on one workload and print the result as one JSON line.

Usage::

    python -m bench.client CLIENT WORKLOAD --server '{"ws_port": ..., ...}' \\
        [--cpu N] [--quick] [--set NAME=VALUE ...] [--asyncio-loop asyncio|uvloop]

CLIENT is one of :data:`bench.clients.CLIENTS`, WORKLOAD one of :data:`bench.workloads.WORKLOADS`,
``--server`` the JSON line printed by :mod:`bench.server`. ``--set`` overrides a
:class:`bench.workloads.Params` field, e.g. ``--set large_count=20``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import ssl
import sys
from typing import Any

from bench.clients import CLIENTS, Client, Endpoint
from bench.procstat import pin_to_cpu
from bench.runtime import ASYNCIO
from bench.workloads import RUNNERS, WORKLOADS, Params, workload_key


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


def endpoint_for(client: Client, workload_key: str, server: dict[str, Any]) -> Endpoint:
    """Where ``client`` connects for ``workload_key`` on the server described by ``server``."""
    kind = WORKLOADS[workload_key].endpoint
    tls = kind == "wss"
    context = ssl.create_default_context(cafile=server["ca_file"]) if tls else None
    if not client.websocket:
        scheme, port = ("tls", server["tls_port"]) if tls else ("tcp", server["tcp_port"])
    else:
        scheme = "wss" if tls else "ws"
        port = server["deflate_port" if kind == "deflate" else "wss_port" if tls else "ws_port"]
    return Endpoint(f"{scheme}://127.0.0.1:{port}/", context, kind == "deflate")


def run_one(
    client_key: str, workload_key: str, server: dict[str, Any], params: Params
) -> dict[str, Any]:
    """Run ``workload_key`` with ``client_key`` in this process and return its result."""
    client = CLIENTS[client_key]
    spec = WORKLOADS[workload_key]
    endpoint = endpoint_for(client, workload_key, server)
    count = getattr(params, spec.count_param)

    async def run() -> dict[str, Any]:
        try:
            return await RUNNERS[spec.runner](client, endpoint, params, count)
        finally:
            await client.aclose()

    result = client.runtime.run(run)
    result.update(client=client_key, workload=workload_key, runtime=client.runtime.name)
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Run one benchmark client/workload.")
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("workload", type=workload_key, choices=sorted(WORKLOADS))
    parser.add_argument("--server", required=True, help="bench.server's JSON line")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    parser.add_argument("--asyncio-loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    ASYNCIO.loop = args.asyncio_loop
    server = json.loads(args.server)
    params = make_params(args.quick, args.set, server.get("cpu_port"))
    result = run_one(args.client, args.workload, server, params)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
