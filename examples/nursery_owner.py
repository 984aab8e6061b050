"""The nursery-owner form: ``nursery.start(run_message_websocket, url)``.

Run: ``python examples/nursery_owner.py [ws://URL]`` (default: an embedded echo server).
"""

from __future__ import annotations

import trio
from _server import server_url

import trio_mws


async def main() -> None:
    async with server_url() as url, trio.open_nursery() as nursery:
        ws = await nursery.start(trio_mws.run_message_websocket, url)
        await ws.send("ping from a nursery")
        print((await ws.receive()).text)
        print(f"round trip: {await ws.ping() * 1000:.2f} ms")
        await ws.close()  # run_message_websocket returns once the socket is closed


if __name__ == "__main__":
    trio.run(main)
