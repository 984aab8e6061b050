"""The convenience form: connect, send text and binary, read the echoes.

Run: ``python examples/echo_client.py [ws://URL]`` (default: an embedded echo server).
"""

from __future__ import annotations

import trio
from _server import server_url

import trio_mws


async def main() -> None:
    async with server_url() as url, trio_mws.open_message_websocket(url) as ws:
        await ws.send("hello")
        event = await ws.receive()
        print(f"{event.message_type.name}: {event.text}")
        await ws.send(b"\x01\x02\x03")
        event = await ws.receive()
        print(f"{event.message_type.name}: {event.data.hex()}")
        print(f"sent {ws.information.messages_sent}, received {ws.information.messages_received}")


if __name__ == "__main__":
    trio.run(main)
