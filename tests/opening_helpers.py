"""Helpers shared by test_opening, test_tls, test_status and test_control.

Everything listens on 127.0.0.1, port 0, for one test only. Nothing here is a mock: the
servers are real sockets (plain or TLS) driven by scripted handlers (``RawPeer``).
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import trio

from trio_mws import MessageWebSocket, WebSocketState

from .rawserver import Handler, RawPeer, close_payload, frame, serve_raw

#: The ``raw_server`` fixture of conftest.py: ``url = await raw_server(handler)``.
RawServer = Callable[[Handler], Awaitable[str]]


@contextmanager
def refused_url() -> Iterator[str]:
    """A ``ws://`` URL whose port is bound but not listening: connecting is refused (RST).

    Keeping the socket bound means no other process can grab the port during the test.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        sock.close()


def port_of(url: str) -> int:
    """The port of a ``ws://127.0.0.1:port/`` URL."""
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def request_line(peer: RawPeer) -> str:
    """The request line of the request read last (``GET /path HTTP/1.1``)."""
    return peer.request_head.decode("latin-1").split("\r\n", 1)[0]


def request_headers(peer: RawPeer) -> list[tuple[str, str]]:
    """Every header line of the request read last, in order, names lower-cased."""
    headers = []
    for line in peer.request_head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return headers


def basic(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def answer(peer: RawPeer, response: bytes) -> None:
    """Read the request and send ``response`` (the whole answer), then let the server close."""
    await peer.read_request()
    await peer.send(response)


async def send_101(peer: RawPeer, extra: str = "") -> None:
    """Answer the request already read with a valid 101 (``extra``: CRLF-ended lines)."""
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {peer.accept_value()}\r\n{extra}\r\n"
    )
    await peer.send(response.encode())


async def finish_close(peer: RawPeer) -> None:
    """After accepting: wait for the client's close frame and answer it (a clean close)."""
    code = await peer.read_close()
    await peer.send(frame(8, close_payload(code) if code is not None else b""))


async def accept_and_close(peer: RawPeer, extra: str = "") -> None:
    """Accept the upgrade (``extra`` header lines), then complete the client's close."""
    await peer.accept(extra)
    await finish_close(peer)


async def echo_frames(peer: RawPeer) -> None:
    """After accepting: echo every data frame (unfragmented) until the client closes."""
    while True:
        fin, opcode, payload = await peer.read_frame()
        if opcode == 8:
            code = int.from_bytes(payload[:2], "big") if payload else None
            await peer.send(frame(8, close_payload(code) if code is not None else b""))
            return
        if opcode in (1, 2):
            await peer.send(frame(opcode, payload, fin=fin))


async def serve_tls_raw(
    handler: Handler,
    context: ssl.SSLContext,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``serve_raw`` over TLS with the server ``context``; reports a ``wss://`` URL."""
    await serve_raw(handler, tls=context, task_status=task_status)


def state(ws: MessageWebSocket) -> WebSocketState:
    """``ws.state``, read through a call so that type checkers do not narrow it."""
    return ws.state
