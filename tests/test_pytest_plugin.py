"""The fixtures trio_mws ships for its users' test suites (``trio_mws.pytest_plugin``)."""

from __future__ import annotations

import trio_mws


async def test_message_websocket_fixture_is_connected_to_an_echo_server(
    message_websocket: trio_mws.MessageWebSocket,
) -> None:
    assert message_websocket.state is trio_mws.WebSocketState.OPEN
    await message_websocket.send("fixture")
    assert (await message_websocket.receive()).text == "fixture"


async def test_echo_server_url_fixture(echo_server_url: str) -> None:
    assert echo_server_url.startswith("ws://127.0.0.1:")
    async with trio_mws.open_message_websocket(echo_server_url) as ws:
        await ws.send(b"\x00")
        assert (await ws.receive()).data == b"\x00"
