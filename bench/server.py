"""Echo servers for the benchmark, run in their own process.

One process serves:

* a WebSocket echo server (picows on asyncio when it is installed, otherwise the websockets
  asyncio server), echoing every data frame back with the same opcode and FIN bit,
* the same WebSocket echo over TLS (wss), with a certificate for 127.0.0.1 from a CA made
  at start-up with trustme; the CA's PEM file is written to a temporary directory,
* a websockets asyncio echo server with permessage-deflate (websockets' default parameters)
  for the compressed workload; it closes with 1008 any connection that did not negotiate the
  extension, so a client that silently sends uncompressed fails instead of looking cheap,
* a raw TCP echo server and the same over TLS (asyncio protocol writing back whatever it
  reads), used for the "raw trio TCP/TLS" ceiling, and
* a CPU-time port: each connection gets this process's CPU seconds as text, so clients can
  measure the server's CPU use over exactly their timed section.

Usage: ``python -m bench.server [--impl auto|picows|websockets] [--loop auto|uvloop|asyncio]
[--cpu N]``.
The event loop is uvloop when installed (``--loop auto``), else asyncio's default.
Once listening it prints one JSON line ``{"impl": ..., "loop": ..., "ws_port": ...,
"wss_port": ..., "deflate_port": ..., "tcp_port": ..., "tls_port": ..., "cpu_port": ...,
"ca_file": ..., "pid": ...}`` on stdout and serves until stdin is closed
(or SIGTERM/SIGINT). :func:`echo_server` starts it from another process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from bench.procstat import pin_to_cpu, raise_nofile_limit

REPO = Path(__file__).resolve().parent.parent
BACKLOG = 4096
MAX_SIZE = 16 * 1024 * 1024


class _TcpEcho(asyncio.Protocol):
    """Raw TCP echo: write back every chunk as it arrives."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _start_picows(host: str, ssl_context: ssl.SSLContext | None) -> asyncio.Server:
    """Start a picows echo server on an ephemeral port (over TLS with ``ssl_context``)."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    # picows warns each time a client lets echoes pile up (pipelined workload): expected here.
    logging.getLogger("picows").setLevel(logging.ERROR)

    class Echo(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            msg_type = frame.msg_type
            if msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif msg_type is not WSMsgType.PING and msg_type is not WSMsgType.PONG:
                # TEXT, BINARY or CONTINUATION: echo frame by frame (keeps fragmentation).
                transport.send(msg_type, frame.get_payload_as_memoryview(), frame.fin)

    return await ws_create_server(
        lambda _request: Echo(),
        host,
        0,
        max_frame_size=MAX_SIZE,
        websocket_handshake_timeout=None,
        enable_auto_ping=False,
        backlog=BACKLOG,
        ssl=ssl_context,
    )


async def _start_websockets(
    host: str, ssl_context: ssl.SSLContext | None = None, *, deflate: bool = False
) -> Any:
    """Start a websockets (asyncio implementation) echo server on an ephemeral port."""
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        if deflate and not ws.protocol.extensions:
            await ws.close(1008, "permessage-deflate required")
            return
        async for message in ws:
            await ws.send(message)

    return await serve(
        echo,
        host,
        0,
        max_size=MAX_SIZE,
        ping_interval=None,
        compression="deflate" if deflate else None,
        backlog=BACKLOG,
        ssl=ssl_context,
    )


def _server_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 from a new trustme CA, and the CA's PEM file."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = directory / "bench-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def _report_cpu(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """CPU-time port: reply with this process's CPU seconds (precise, unlike /proc ticks)."""
    writer.write(repr(time.process_time()).encode())
    writer.close()


def resolve_impl(impl: str) -> str:
    """Resolve ``auto`` to ``picows`` when importable, else ``websockets``."""
    if impl != "auto":
        return impl
    try:
        import picows  # noqa: F401
    except ImportError:
        return "websockets"
    return "picows"


def _port(server: Any) -> int:
    port: int = next(iter(server.sockets)).getsockname()[1]
    return port


async def serve(impl: str, host: str, directory: Path) -> None:
    """Run the echo servers until stdin reaches EOF or a termination signal arrives."""
    impl = resolve_impl(impl)
    loop = asyncio.get_running_loop()
    tls, ca_file = _server_tls(directory)
    start_ws = _start_picows if impl == "picows" else _start_websockets
    servers: dict[str, Any] = {
        "ws_port": await start_ws(host, None),
        "wss_port": await start_ws(host, tls),
        "deflate_port": await _start_websockets(host, deflate=True),
        "tcp_port": await loop.create_server(_TcpEcho, host, 0, backlog=BACKLOG),
        "tls_port": await loop.create_server(_TcpEcho, host, 0, backlog=BACKLOG, ssl=tls),
        "cpu_port": await asyncio.start_server(_report_cpu, host, 0),
    }

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_stdin() -> None:
        # EOF on stdin means the runner is gone (or done): stop too.
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)

    loop_name = type(loop).__module__.split(".")[0]
    info: dict[str, Any] = {"impl": impl, "loop": loop_name}
    info.update({name: _port(server) for name, server in servers.items()})
    info.update(ca_file=str(ca_file), pid=os.getpid())
    print(json.dumps(info), flush=True)
    await stop.wait()
    for server in servers.values():
        server.close()


def subprocess_env() -> dict[str, str]:
    """Environment for bench subprocesses: the repository first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def cpu_args(cpu: int | None) -> list[str]:
    """Command-line arguments pinning a bench subprocess to ``cpu`` (none for ``None``)."""
    return [] if cpu is None else ["--cpu", str(cpu)]


@contextlib.contextmanager
def echo_server(impl: str, cpu: int | None) -> Iterator[dict[str, Any]]:
    """Start :mod:`bench.server` in its own process; yield its JSON info line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--impl", impl, *cpu_args(cpu)],
        cwd=REPO,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("echo server failed to start")
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # EOF tells the server to stop
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("auto", "picows", "websockets"), default="auto")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="uvloop if installed"
    )
    parser.add_argument("--cpu", type=int, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    raise_nofile_limit()
    runner: Any = asyncio.run
    if args.loop in ("auto", "uvloop"):
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            if args.loop == "uvloop":
                raise
    with contextlib.suppress(KeyboardInterrupt), tempfile.TemporaryDirectory() as directory:
        runner(serve(args.impl, args.host, Path(directory)))


if __name__ == "__main__":
    main()
