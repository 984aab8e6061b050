"""Every failure is a ``WebSocketError`` with a ``WebErrorStatus``.

Run: ``python examples/error_handling.py`` (needs nothing: it fails on purpose).
"""

from __future__ import annotations

import trio

import trio_mws


async def main() -> None:
    # Nothing listens on port 1: the connect fails, classified.
    try:
        async with trio_mws.open_message_websocket("ws://127.0.0.1:1/", connect_timeout=5):
            pass
    except trio_mws.WebSocketError as exc:
        print(f"{type(exc).__name__}: status {exc.status.name}")
        print(f"get_status agrees: {trio_mws.WebSocketError.get_status(exc).name}")
    # Bad input is refused before any I/O.
    try:
        async with trio_mws.open_message_websocket("http://example.org/"):
            pass
    except ValueError as exc:
        print(f"ValueError: {exc}")


if __name__ == "__main__":
    trio.run(main)
