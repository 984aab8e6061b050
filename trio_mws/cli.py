"""``python -m trio_mws [URL]`` (also ``trio-mws``): an interactive client, the package's main job.

Each line of standard input is sent as one message; every message that arrives is printed.
Without a URL, an embedded echo server (trio-websocket) starts on 127.0.0.1 and the client
connects to it, so the command works on a machine with nothing else. End of input (Ctrl-D, or
the end of a pipe) closes the connection with 1000 after the replies have arrived; the client
also exits as soon as the server closes or the connection is lost, even while input remains.

On a terminal, incoming lines are marked ``< `` and their control characters are shown
escaped (a server cannot drive the terminal); on a pipe they are printed as they are. Status
lines (connected, closed, failures: one line each, with the ``WebErrorStatus``) go to stderr.

Exit status:

- 0: the connection was closed cleanly with code 1000, 1001 or none (1005);
- 1: the connection failed, was lost, or was closed with another code;
- 2: bad usage (options, URL, header or protocol), refused before any network activity;
- 130: interrupted by Ctrl-C (SIGINT). The first Ctrl-C closes with 1001, waiting at most
  2 s for the server; a second one exits at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Sequence

import trio

from ._version import __version__
from .control import MessageWebSocketControl
from .enums import SocketMessageType
from .errors import ConnectionClosed, WebSocketError
from .events import Closed, MessageReceived
from .handshake import check_request_header
from .message_websocket import MessageWebSocket
from .testing import serve_echo
from .uri import parse_uri

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "INTERRUPT_CLOSE_TIMEOUT",
    "main",
]

#: Exit status: closed cleanly (code 1000, 1001 or none).
EXIT_OK = 0
#: Exit status: the connection failed, was lost, or was closed with another code.
EXIT_FAILED = 1
#: Exit status: bad command line, refused before any network activity.
EXIT_USAGE = 2
#: Exit status: interrupted by Ctrl-C (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130
#: Seconds the first Ctrl-C waits for the server to answer the 1001 close.
INTERRUPT_CLOSE_TIMEOUT = 2.0

_CLEAN_CLOSE_CODES = frozenset({1000, 1001, 1005})
_CLOSE_CODE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "abnormal closure",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
}
_READ_SIZE = 65536


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-mws",
        description="Send each line of stdin as a WebSocket message and print what arrives. "
        "Without URL, talks to an embedded echo server on 127.0.0.1.",
        epilog="exit status: 0 closed cleanly (1000, 1001 or no code); 1 connection failed, "
        "lost, or closed with another code; 2 bad usage; 130 interrupted (Ctrl-C)",
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
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of a failure (for bug reports)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _escaped(text: str) -> str:
    """``text`` with control characters (escape sequences, CR, ...) shown as ``\\xNN``."""
    return "".join(
        f"\\x{ord(char):02x}" if char != "\t" and (char < " " or "\x7f" <= char <= "\x9f") else char
        for char in text
    )


def _parse_headers(raw: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, colon, value = item.partition(":")
        if not colon:
            raise ValueError(f"header {item!r} must look like 'Name: value'")
        checked_name, checked_value = check_request_header(name.strip(), value.strip())
        headers[checked_name] = checked_value
    return headers


def _describe(closed: Closed) -> str:
    by = "closed" if closed.initiated_locally else "closed by server"
    name = _CLOSE_CODE_NAMES.get(closed.code, "application code" if closed.code >= 3000 else "")
    line = f"{by}: {closed.code}" + (f" ({name})" if name else "")
    return line + (f": {closed.reason}" if closed.reason else "")


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in ``exc``, taken out of (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


class _Output:
    """Where and how things are shown: stdout for messages, stderr for status lines."""

    def __init__(self, *, debug: bool) -> None:
        self.debug = debug
        self.terminal = sys.stdout.isatty()
        self.interactive = sys.stdin.isatty()  # a person types: hints make sense

    def message(self, event: MessageReceived) -> bool:
        """Print an incoming message; False once stdout's reader has gone (``| head``)."""
        if event.message_type is SocketMessageType.UTF8:
            text = event.text
        else:
            text = f"<binary {len(event.data)} bytes: {event.data[:64].hex(' ')}>"
        if self.terminal:
            text = "< " + "\n  ".join(_escaped(line) for line in text.split("\n"))
        try:
            print(text, flush=True)
        except BrokenPipeError:
            # Python's recipe (signal module docs): point stdout at devnull, so that the
            # flush at exit does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return False
        return True

    def status(self, line: str) -> None:
        """One line on stderr; server-chosen text in it cannot break the line or the terminal."""
        print(_escaped(line), file=sys.stderr, flush=True)

    def failure(self, prefix: str, exc: BaseException) -> None:
        if self.debug:
            traceback.print_exception(exc)
        self.status(f"{prefix}: {exc} (status {WebSocketError.get_status(exc).name})")


class _Client:
    """One run of the client: connect, send lines, print messages, report how it ended."""

    def __init__(self, args: argparse.Namespace, output: _Output) -> None:
        self.args = args
        self.output = output
        self.interrupted = False
        self.work = trio.CancelScope()  # connecting and talking: what Ctrl-C cancels
        self.input = trio.CancelScope()  # reading stdin: ends when the connection does
        self.lost: ConnectionClosed | None = None
        self.sent = 0
        self.received = 0
        self.progress = trio.Event()

    async def watch_interrupts(self, interrupts: AsyncIterator[int]) -> None:
        """First Ctrl-C: stop and close politely. Second: exit now."""
        async for _ in interrupts:
            if self.output.interactive:
                print(file=sys.stderr)  # after the terminal's "^C"
            if self.interrupted:
                self.output.status("interrupted again: not waiting for the close")
                raise KeyboardInterrupt
            self.interrupted = True
            self.output.status("interrupted")
            self.work.cancel()

    async def run(self, url: str) -> int:
        args = self.args
        ws = MessageWebSocket()
        ws.control.compression = args.compression
        ws.control.message_type = (
            SocketMessageType.BINARY if args.binary else SocketMessageType.UTF8
        )
        ws.control.supported_protocols.extend(args.protocol)
        for name, value in _parse_headers(args.header).items():
            ws.set_request_header(name, value)
        async with ws:
            with self.work:
                try:
                    await ws.connect(url)
                except WebSocketError as exc:
                    self.output.failure("error", exc)
                    return EXIT_FAILED
                protocol = ws.information.protocol
                self.output.status(
                    f"connected to {url}"
                    + (f" (protocol {protocol})" if protocol else "")
                    + ("; type messages, Ctrl-D to close" if self.output.interactive else "")
                )
                await self.talk(ws)
            if self.interrupted:
                with trio.move_on_after(INTERRUPT_CLOSE_TIMEOUT):
                    await ws.close(1001)
                if ws.closed is not None:
                    self.output.status(_describe(ws.closed))
                return EXIT_INTERRUPTED
            return self.report(ws)

    async def talk(self, ws: MessageWebSocket) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.print_messages, ws)
            with self.input:
                await self.send_lines(ws)
            # No-op when the connection has ended; else the printer shows what arrives
            # meanwhile and ends with the close.
            await ws.close(1000)

    async def print_messages(self, ws: MessageWebSocket) -> None:
        output_open = True
        try:
            async for event in ws.events():
                if isinstance(event, Closed):
                    break
                if not output_open:
                    continue  # until the close that follows completes
                if not self.output.message(event):
                    output_open = False
                    self.output.status("standard output closed")
                    self.input.cancel()  # and close: nobody reads what arrives
                    continue
                if event.is_message_complete:
                    self.received += 1
                self.progress.set()
                self.progress = trio.Event()
        except ConnectionClosed as exc:
            self.lost = exc
        self.input.cancel()  # the connection has ended: stop waiting for input

    async def send_lines(self, ws: MessageWebSocket) -> None:
        """Send each line until end of input, then wait for the replies."""
        binary = self.args.binary
        pending = bytearray()
        at_end = False
        while not at_end:
            while b"\n" not in pending and not at_end:
                # os.read in a thread holds no lock of sys.stdin, so the thread can be
                # abandoned (on a server close or Ctrl-C) without blocking the exit.
                chunk = await trio.to_thread.run_sync(
                    os.read, sys.stdin.fileno(), _READ_SIZE, abandon_on_cancel=True
                )
                pending += chunk
                at_end = not chunk
            line, newline, rest = bytes(pending).partition(b"\n")
            pending = bytearray(rest)
            if not (newline or line):
                break
            line = line.removesuffix(b"\r")
            try:
                await ws.send(line if binary else line.decode(errors="replace"))
            except ConnectionClosed:
                await trio.sleep_forever()  # the printer sees the end too and cancels input
            self.sent += 1
        await self.wait_for_replies()

    async def wait_for_replies(self) -> None:
        """After end of input: until every echo arrived, or ``--wait`` s without a message."""
        while not (self.args.url is None and self.received >= self.sent):
            with trio.move_on_after(self.args.wait) as scope:
                await self.progress.wait()
            if scope.cancelled_caught:
                return

    def report(self, ws: MessageWebSocket) -> int:
        closed = ws.closed
        if closed is None:
            # The printer ends with a Closed event (then ws.closed is set) or an exception.
            assert self.lost is not None
            self.output.failure("connection lost", self.lost)
            return EXIT_FAILED
        if self.lost is not None and closed.initiated_locally:  # e.g. a message too big
            self.output.failure("error", self.lost)
        self.output.status(_describe(closed))
        return EXIT_OK if closed.code in _CLEAN_CLOSE_CODES else EXIT_FAILED


async def _run(client: _Client) -> int:
    with trio.open_signal_receiver(signal.SIGINT) as interrupts:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.watch_interrupts, interrupts)
            url = client.args.url
            if url is None:
                url = await nursery.start(serve_echo)
                client.output.status(f"embedded echo server on {url}")
            status = EXIT_INTERRUPTED if client.interrupted else await client.run(url)
            nursery.cancel_scope.cancel()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m trio_mws`` and the ``trio-mws`` script; the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.wait < 0:
        parser.error("--wait cannot be negative")
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    output = _Output(debug=args.debug)
    try:  # bad URL, header or protocol: refused before any I/O
        if args.url is not None:
            parse_uri(args.url)
        _parse_headers(args.header)
        MessageWebSocketControl(supported_protocols=args.protocol)
    except ValueError as exc:
        output.status(f"error: {exc}")
        return EXIT_USAGE
    client = _Client(args, output)
    try:
        return trio.run(_run, client)
    except BaseException as exc:  # what our nurseries raise comes in exception groups
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in _leaves(exc)):
            if not client.interrupted:  # before our handler was in place
                output.status("interrupted")
            return EXIT_INTERRUPTED
        if not isinstance(exc, Exception):
            raise
        if args.debug:
            traceback.print_exception(exc)
        leaf = _leaves(exc)[0]
        output.status(f"error: unexpected {type(leaf).__name__}: {leaf} (--debug shows where)")
        return EXIT_FAILED
