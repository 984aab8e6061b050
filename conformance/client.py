#!/usr/bin/env python3
"""Autobahn|Testsuite echo client for trio_mws.

Usage::

    python conformance/client.py --url ws://127.0.0.1:9001 --agent NAME
        --mode full|partial [--compression] [--cases PATTERNS] [--verbose]

It asks the fuzzingserver for its case count (``/getCaseCount``) and the case ids
(``/getCaseInfo``), runs every case (``/runCase?case=N&agent=NAME``) by echoing each
message it receives -- text as text, binary as binary -- until the connection ends, then
asks the server to write its report (``/updateReports?agent=NAME``). The server judges
the traffic; ``conformance/summarize.py`` reads its verdicts.

``--mode full`` receives whole messages and echoes each with ``send``. ``--mode partial``
receives messages in chunks and echoes each chunk as it arrives, as a frame of a
fragmented message (``send_nonfinal_frame`` / ``send_final_frame``).

Only the public trio_mws API is used. Any ``trio_mws.WebSocketError`` ends a case: the
fuzzingserver decides whether ending it was right. Anything else escaping trio_mws (or a
case that outlives ``--case-timeout``) breaks trio_mws's contract: it is printed, the
remaining cases still run, and the exit status is 1. Exit status 2: the server could not
be reached.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import resource
import sys
import time
import traceback
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import trio

import trio_mws

AUTOBAHN_MAX_MESSAGE = 16 * 2**20
"""Largest message the fuzzingserver sends (cases 9.1.6 and 9.2.6)."""
DEFAULT_MAX_MESSAGE_SIZE = 2 * AUTOBAHN_MAX_MESSAGE
"""Default ``max_message_size``: comfortably above Autobahn's largest message."""
DEFAULT_CASE_TIMEOUT = 600.0
"""Default ``--case-timeout``: the server gives up on a case after at most 480 s (12.*)."""
SERVICE_TIMEOUT = 300.0
"""Timeout of a service request (/getCaseCount, /getCaseInfo, /updateReports)."""
MAX_TRACEBACKS = 5
"""Unexpected errors after this many are reported in one line each."""


@dataclass(frozen=True)
class Config:
    """Command-line settings of one client run."""

    url: str
    agent: str
    partial: bool
    compression: bool
    max_message_size: int | None
    case_timeout: float
    cases: tuple[str, ...]
    verbose: bool


@dataclass
class Stats:
    """What happened to the cases of one run, from the client's side."""

    ran: int = 0
    timeouts: int = 0
    unexpected: int = 0


def endpoint(config: Config, path: str, **params: str | int) -> str:
    """URL of a fuzzingserver endpoint, e.g. ``endpoint(c, "runCase", case=1, agent="a")``."""
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return f"{config.url.rstrip('/')}/{path}" + (f"?{query}" if query else "")


def describe(exc: BaseException) -> str:
    """One-line description of an exception."""
    text = str(exc)
    return type(exc).__name__ + (f": {text}" if text else "")


def is_websocket_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a WebSocketError, or an exception group of nothing else."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, Sequence) and inner:
        return all(is_websocket_error(e) for e in inner if isinstance(e, BaseException))
    return isinstance(exc, trio_mws.WebSocketError)


async def fetch_messages(config: Config, path: str, **params: str | int) -> list[str]:
    """Connect to a fuzzingserver service endpoint; return its text messages.

    These endpoints send zero or one message, then close the connection.
    """
    messages: list[str] = []
    try:
        with trio.fail_after(SERVICE_TIMEOUT):
            await _collect_messages(config, path, messages, **params)
    except trio_mws.ConnectionClosed:
        if not messages:
            raise
    return messages


async def _collect_messages(
    config: Config, path: str, messages: list[str], **params: str | int
) -> None:
    """Append the text messages of a service endpoint to ``messages`` until it closes."""
    async with trio_mws.open_message_websocket(
        endpoint(config, path, **params), ping_interval=None, proxy=None
    ) as ws:
        async for event in ws:
            messages.append(event.text)


async def fetch_text(config: Config, path: str, **params: str | int) -> str:
    """Return the one text message a fuzzingserver info endpoint sends."""
    messages = await fetch_messages(config, path, **params)
    if len(messages) != 1:
        raise ValueError(f"/{path}: expected one message, got {len(messages)}")
    return messages[0]


async def echo(ws: trio_mws.MessageWebSocket, partial: bool) -> None:
    """Echo every message (or, when ``partial``, every chunk) until the connection ends."""
    async for event in ws:
        if not partial:
            await ws.send(event.data, message_type=event.message_type)
            continue
        # UTF8 chunks end on character boundaries: echo them as str, so that they are sent
        # as (the start of) a text message. Bytes start a binary one (control.message_type).
        data: str | bytes = (
            event.text if event.message_type == trio_mws.SocketMessageType.UTF8 else event.data
        )
        if event.is_message_complete:
            await ws.send_final_frame(data)  # ends the fragmented echo, or is a whole message
        else:
            await ws.send_nonfinal_frame(data)


async def run_case(config: Config, index: int) -> str:
    """Run case number ``index``; return how it ended, for ``--verbose``.

    A WebSocketError ends the case normally. Other exceptions propagate.
    """
    url = endpoint(config, "runCase", case=index, agent=config.agent)
    mode = (
        trio_mws.MessageWebSocketReceiveMode.PARTIAL_MESSAGE
        if config.partial
        else trio_mws.MessageWebSocketReceiveMode.FULL_MESSAGE
    )
    ending = "closed"
    try:
        async with trio_mws.open_message_websocket(
            url,
            receive_mode=mode,
            max_message_size=config.max_message_size,
            compression=config.compression,
            ping_interval=None,  # no keepalive pings: the server would see unexpected traffic
            proxy=None,  # loopback: never through a proxy from the environment
        ) as ws:
            try:
                await echo(ws, config.partial)
            except trio_mws.WebSocketError as exc:
                ending = describe(exc)
    except Exception as exc:
        if not is_websocket_error(exc):
            raise
        ending = f"on open/close: {describe(exc)}"
    return ending


async def select_cases(config: Config) -> list[tuple[int, str]]:
    """Return the (index, id) of each case to run, in the server's order."""
    count = int(await fetch_text(config, "getCaseCount"))
    selected = []
    for index in range(1, count + 1):
        case_id = json.loads(await fetch_text(config, "getCaseInfo", case=index))["id"]
        if not config.cases or any(fnmatch.fnmatchcase(case_id, p) for p in config.cases):
            selected.append((index, str(case_id)))
    return selected


async def run(config: Config) -> int:
    """Run the selected cases and update the reports; return the exit status."""
    try:
        cases = await select_cases(config)
    except (OSError, trio_mws.WebSocketError, trio.TooSlowError, ValueError, KeyError) as exc:
        print(f"{config.agent}: cannot query the fuzzingserver: {describe(exc)}", file=sys.stderr)
        return 2
    print(f"{config.agent}: running {len(cases)} cases", flush=True)

    stats = Stats()
    start = time.monotonic()
    section = ""
    for index, case_id in cases:
        if case_id.split(".")[0] != section:
            section = case_id.split(".")[0]
            elapsed = time.monotonic() - start
            print(
                f"{config.agent}: [{elapsed:6.1f} s] section {section}.* from {case_id}",
                flush=True,
            )
        case_start = time.monotonic()
        ending = "timed out"
        with trio.move_on_after(config.case_timeout) as scope:
            try:
                ending = await run_case(config, index)
            except Exception as exc:
                stats.unexpected += 1
                ending = f"UNEXPECTED {describe(exc)}"
                print(f"{config.agent}: case {case_id}: {ending}", file=sys.stderr)
                if stats.unexpected <= MAX_TRACEBACKS:
                    traceback.print_exception(type(exc), exc, exc.__traceback__)
        if scope.cancelled_caught:
            stats.timeouts += 1
            print(
                f"{config.agent}: case {case_id}: still running after {config.case_timeout} s,"
                " abandoned",
                file=sys.stderr,
            )
        stats.ran += 1
        if config.verbose:
            print(f"{case_id:>9} {time.monotonic() - case_start:7.3f} s  {ending}", flush=True)

    try:
        await fetch_messages(config, "updateReports", agent=config.agent)
    except (OSError, trio_mws.WebSocketError, trio.TooSlowError) as exc:
        print(f"{config.agent}: /updateReports failed: {describe(exc)}", file=sys.stderr)
        return 2

    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"{config.agent}: ran {stats.ran} cases in {time.monotonic() - start:.1f} s"
        f" (client CPU {usage.ru_utime + usage.ru_stime:.1f} s);"
        f" {stats.timeouts} timed out, {stats.unexpected} unexpected errors",
        flush=True,
    )
    return 1 if stats.timeouts or stats.unexpected else 0


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Parse the command line into a Config."""
    parser = argparse.ArgumentParser(
        description="Autobahn|Testsuite echo client for trio_mws (see module docstring)."
    )
    parser.add_argument("--url", default="ws://127.0.0.1:9001", help="fuzzingserver URL")
    parser.add_argument("--agent", required=True, help="agent name in the report")
    parser.add_argument(
        "--mode",
        choices=("full", "partial"),
        default="full",
        help="receive whole messages, or chunks echoed as frames (default: full)",
    )
    parser.add_argument(
        "--compression", action="store_true", help="offer permessage-deflate (RFC 7692)"
    )
    parser.add_argument(
        "--max-message-size",
        type=int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help=f"max_message_size; 0: unlimited (default: {DEFAULT_MAX_MESSAGE_SIZE})",
    )
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=DEFAULT_CASE_TIMEOUT,
        metavar="SECS",
        help=f"abandon a case after this long (default: {DEFAULT_CASE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--cases",
        default="",
        metavar="PATTERNS",
        help="comma-separated case id patterns, e.g. '7.*,12.1.1' (default: all)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print a line per case")
    args = parser.parse_args(argv)
    return Config(
        url=args.url,
        agent=args.agent,
        partial=args.mode == "partial",
        compression=args.compression,
        max_message_size=args.max_message_size or None,
        case_timeout=args.case_timeout,
        cases=tuple(p.strip() for p in args.cases.split(",") if p.strip()),
        verbose=args.verbose,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    return trio.run(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
