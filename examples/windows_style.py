"""The Windows-shaped form: configure the control, set headers, then connect.

Sends a message in fragments (``send_nonfinal_frame``/``send_final_frame``) and receives the
echo in PARTIAL_MESSAGE mode, as pieces arrive.

Run: ``python examples/windows_style.py [ws://URL]`` (default: an embedded echo server).
"""

from __future__ import annotations

import trio
from _server import server_url

import trio_mws


async def main() -> None:
    async with server_url() as url:
        ws = trio_mws.MessageWebSocket()
        ws.control.receive_mode = trio_mws.MessageWebSocketReceiveMode.PARTIAL_MESSAGE
        ws.control.max_message_size = 4096  # each delivered piece holds at most 4 KiB
        ws.control.supported_protocols.append("chat.v1")
        ws.set_request_header("X-Client", "windows-style example")
        async with ws:
            await ws.connect(url)
            print(f"negotiated protocol: {ws.information.protocol}")
            for piece in ("part one, ", "part two, "):
                await ws.send_nonfinal_frame(piece)
            await ws.send_final_frame("the end")
            await ws.send(b"x" * 10_000)
            pieces = 0
            async for event in ws:
                pieces += 1
                if event.message_type is trio_mws.SocketMessageType.UTF8:
                    print(f"text: {event.text}")
                if event.is_message_complete and event.message_type.name == "BINARY":
                    print(f"binary message complete after {pieces - 1} pieces")
                    break
            await ws.close(1000, "done")
        print(f"closed: {ws.closed}")


if __name__ == "__main__":
    trio.run(main)
