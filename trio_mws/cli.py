"""``python -m trio_mws [URL]``: an interactive client, the package's main job.

Each line of standard input is sent as one message; every message that arrives is printed.
Without a URL, an embedded echo server (trio-websocket) starts on 127.0.0.1 and the client
connects to it, so the command works on a machine with nothing else. End of input (Ctrl-D, or
the end of a pipe) closes the connection with 1000 after the replies have arrived.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import trio

from .control import MessageWebSocketControl
from .entry_points import open_message_websocket
from .enums import SocketMessageType
from .errors import ConnectionClosed, WebSocketError
from .events import MessageReceived
from .handshake import check_request_header
from .message_websocket import MessageWebSocket
from .testing import serve_echo
from .uri import parse_uri

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-mws",
        description="Send each line of stdin as a WebSocket message and print what arrives. "
        "Without URL, talks to an embedded echo server on 127.0.0.1.",
    )
    parser.add_argument("url", nargs="?", help="ws:// or wss:// URL (default: embedded echo)")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    parser.add_argument(
        "-p", "--protocol", action="append", default=[], help="subprotocol to offer (repeatable)"
    )
    parser.add_argument(
        "--binary", action="store_true", help="send lines as BINARY messages (default: UTF8)"
    )
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    parser.add_argument(
        "--wait",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="after end of input, wait this long for more messages before closing (default 1)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging to stderr")
    return parser


def _format(event: MessageReceived) -> str:
    if event.message_type is SocketMessageType.UTF8:
        return event.text
    return f"<binary {len(event.data)} bytes: {event.data[:64].hex(' ')}>"


def _parse_headers(raw: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, colon, value = item.partition(":")
        if not colon:
            raise ValueError(f"header {item!r} must look like 'Name: value'")
        checked_name, checked_value = check_request_header(name.strip(), value.strip())
        headers[checked_name] = checked_value
    return headers


class _Session:
    """Counts what was sent and printed, so end of input can wait for the replies."""

    def __init__(self, ws: MessageWebSocket, *, echo: bool, wait: float) -> None:
        self.ws = ws
        self.echo = echo
        self.wait = wait
        self.sent = 0
        self.received = 0
        self.progress = trio.Event()

    async def print_messages(self) -> None:
        try:
            async for event in self.ws:
                print(_format(event), flush=True)
                if event.is_message_complete:
                    self.received += 1
                self.progress.set()
                self.progress = trio.Event()
        except ConnectionClosed as exc:
            print(f"connection lost: {exc} (status {exc.status.name})", file=sys.stderr)
        closed = self.ws.closed
        if closed is not None and not closed.initiated_locally:
            print(f"server closed: {closed.code} {closed.reason}".rstrip(), file=sys.stderr)

    async def send_lines(self, binary: bool) -> None:
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            if not line:
                break
            text = line.rstrip("\r\n")
            await self.ws.send(text.encode() if binary else text)
            self.sent += 1
        await self.wait_for_replies()

    async def wait_for_replies(self) -> None:
        """After end of input: until every echo arrived, or ``wait`` s without a message."""
        while not (self.echo and self.received >= self.sent):
            with trio.move_on_after(self.wait) as scope:
                await self.progress.wait()
            if scope.cancelled_caught:
                return


async def run(args: argparse.Namespace) -> int:
    """Run the client as the parsed command line says; returns the exit status."""
    control = MessageWebSocketControl(
        compression=args.compression,
        message_type=SocketMessageType.BINARY if args.binary else SocketMessageType.UTF8,
    )
    headers = _parse_headers(args.header)
    async with trio.open_nursery() as nursery:
        url = args.url
        if url is None:
            url = await nursery.start(serve_echo)
            print(f"embedded echo server on {url}", file=sys.stderr)
        try:
            async with open_message_websocket(
                url, control=control, protocols=args.protocol, headers=headers
            ) as ws:
                print(
                    f"connected to {url}"
                    + (f" (protocol {ws.information.protocol})" if ws.information.protocol else "")
                    + "; type messages, Ctrl-D to close",
                    file=sys.stderr,
                )
                session = _Session(ws, echo=args.url is None, wait=args.wait)
                async with trio.open_nursery() as inner:
                    inner.start_soon(session.print_messages)
                    await session.send_lines(args.binary)
                    await ws.close(1000)
        except WebSocketError as exc:
            print(f"error: {exc} (status {exc.status.name})", file=sys.stderr)
            return 1
        finally:
            nursery.cancel_scope.cancel()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m trio_mws`` and the ``trio-mws`` script."""
    args = _parser().parse_args(argv)
    if args.wait < 0:
        _parser().error("--wait cannot be negative")
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:  # bad URL, header or protocol: refused before any I/O
        if args.url is not None:
            parse_uri(args.url)
        _parse_headers(args.header)
        MessageWebSocketControl(supported_protocols=args.protocol)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return trio.run(run, args)
    except KeyboardInterrupt:
        return 130
