"""Server headroom probe: the echo server's speed with a fast (non-trio) client.

Runs a picows asyncio client in its own process, pipelining small binary messages through
the echo server while it reads the echoes, and prints one JSON line with msg/s and the
server's CPU share. If this is far above what the trio clients reach, the server is not
their bottleneck.

Usage: ``python -m bench.headroom WS_URL SERVER_CPU_PORT [--count N] [--size B] [--cpu N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from bench.procstat import pin_to_cpu, server_cpu_seconds


async def probe(url: str, server_cpu_port: int, count: int, size: int) -> dict[str, Any]:
    """Pipeline ``count`` messages of ``size`` bytes and measure throughput."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    done = asyncio.get_running_loop().create_future()

    class Counter(WSListener):
        def __init__(self) -> None:
            self.target = 0
            self.received = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is WSMsgType.BINARY:
                self.received += 1
                if self.received == self.target and not done.done():
                    done.set_result(None)

    transport, listener = await ws_connect(Counter, url, enable_auto_ping=False)
    assert isinstance(listener, Counter)
    payload = os.urandom(size)
    listener.target = count
    cpu0 = server_cpu_seconds(server_cpu_port)
    t0 = time.perf_counter()
    for i in range(count):
        transport.send(WSMsgType.BINARY, payload)
        if i % 64 == 63:
            await asyncio.sleep(0)  # let echoes in, as a pipelining client would
    await done
    wall = time.perf_counter() - t0
    server_cpu = server_cpu_seconds(server_cpu_port) - cpu0
    transport.send_close()
    transport.disconnect()
    return {
        "client": "picows",
        "value": count / wall,
        "messages": count,
        "size": size,
        "server_cpu": server_cpu / wall,
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Echo server headroom probe (picows client).")
    parser.add_argument("url")
    parser.add_argument("server_cpu_port", type=int)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    result = asyncio.run(probe(args.url, args.server_cpu_port, args.count, args.size))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
