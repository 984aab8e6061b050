"""First end-to-end checks against the three kinds of peers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio_mws

from .rawserver import RawPeer, close_payload, frame


async def test_echo_text_and_binary(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        await ws.send("héllo")
        event = await ws.receive()
        assert event.message_type is trio_mws.SocketMessageType.UTF8
        assert event.text == "héllo"
        await ws.send(b"\x00\xff")
        event = await ws.receive()
        assert event.message_type is trio_mws.SocketMessageType.BINARY
        assert event.data == b"\x00\xff"
    assert ws.closed == trio_mws.Closed(1000, "", initiated_locally=True)


async def test_websockets_server_compressed(websockets_url: str) -> None:
    async with trio_mws.open_message_websocket(websockets_url, compression=True) as ws:
        assert ws.information.handshake_response is not None
        assert "permessage-deflate" in (
            ws.information.handshake_response.get("sec-websocket-extensions") or ""
        )
        await ws.send("x" * 100_000)
        assert (await ws.receive()).text == "x" * 100_000


async def test_raw_server_close(raw_server: Callable[..., Any]) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(1, b"hi") + frame(8, close_payload(1001, b"bye")))
        assert await peer.read_close() == 1001
        await peer.stream.aclose()

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        events = [event async for event in ws.events()]
    assert events == [
        trio_mws.MessageReceived(trio_mws.SocketMessageType.UTF8, b"hi", True),
        trio_mws.Closed(1001, "bye", initiated_locally=False),
    ]
