"""The scripted test peer (``trio_mws.testing``): every move it offers, seen from our client.

Each test plays one server behaviour and asserts what a user's client sees, and what the
server recorded of the client.
"""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

import trio_mws
from trio_mws.testing import (
    ClientClosed,
    ScriptedConnection,
    ScriptedServer,
    open_scripted_server,
    serve_scripted,
)

PROMPTLY = 5.0


async def test_accept_with_subprotocol_and_headers_records_the_request(
    scripted_server: ScriptedServer,
) -> None:
    async with trio.open_nursery() as nursery:

        async def client() -> None:
            async with trio_mws.open_message_websocket(
                scripted_server.url + "chat?room=1",
                protocols=["chat.v2", "chat.v1"],
                headers={"X-Client": "demo"},
            ) as ws:
                assert ws.information.protocol == "chat.v1"
                handshake = ws.information.handshake_response
                assert handshake is not None
                assert ("X-Server", "scripted") in handshake.headers
                await ws.send("hi")

        nursery.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await scripted_server.accept_connection()
            assert peer.request.target == "/chat?room=1"
            assert peer.request.subprotocols == ("chat.v2", "chat.v1")
            assert peer.request.header("x-client") == "demo"
            await peer.accept(subprotocol="chat.v1", headers=[("X-Server", "scripted")])
            assert (await peer.receive_message()).text == "hi"
            closed = await peer.wait_for_close()
    assert closed.code == 1000
    assert peer.close_code == 1000
    assert [m.text for m in peer.messages] == ["hi"]


async def test_reject_gives_the_client_a_handshake_error_with_status_headers_and_body(
    scripted_server: ScriptedServer,
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_reject, scripted_server, 429)
        with pytest.raises(trio_mws.HandshakeError) as caught:
            async with trio_mws.open_message_websocket(scripted_server.url):
                pass  # pragma: no cover - never connects
    assert caught.value.status is trio_mws.WebErrorStatus.UNEXPECTED_CLIENT_ERROR
    assert caught.value.status_code == 429
    assert ("Retry-After", "7") in caught.value.headers
    assert caught.value.body == b"slow down"


async def _reject(server: ScriptedServer, status: int) -> None:
    peer = await server.accept_connection()
    await peer.reject(status, reason="Too Many", headers=[("Retry-After", "7")], body=b"slow down")


async def test_messages_fragments_and_pings_reach_the_client(
    scripted_server: ScriptedServer,
) -> None:
    received: list[tuple[trio_mws.SocketMessageType, bytes]] = []
    async with trio.open_nursery() as nursery:

        async def client() -> None:
            async with trio_mws.open_message_websocket(scripted_server.url) as ws:
                async for event in ws:
                    received.append((event.message_type, event.data))

        nursery.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await scripted_server.accept_connection()
            await peer.accept()
            await peer.send_text("héllo")
            await peer.send_binary(b"\x00\x01")
            await peer.send_fragmented(["one ", "two ", "three"])
            await peer.ping(b"are you there")
            pong = await peer.receive_frame()
            await peer.close(1000, "bye")
            closed = await peer.wait_for_close()
    assert received == [
        (trio_mws.SocketMessageType.UTF8, "héllo".encode()),
        (trio_mws.SocketMessageType.BINARY, b"\x00\x01"),
        (trio_mws.SocketMessageType.UTF8, b"one two three"),
    ]
    assert (pong.opcode, pong.payload, pong.masked) == (0xA, b"are you there", True)
    assert closed.code == 1000  # the client echoed our close


async def test_a_raw_invalid_frame_makes_the_client_fail_with_1002(
    scripted_server: ScriptedServer,
) -> None:
    async with trio.open_nursery() as nursery:

        async def client() -> None:
            async with trio_mws.open_message_websocket(scripted_server.url) as ws:
                with pytest.raises(trio_mws.ConnectionClosed) as caught:
                    await ws.receive()
                assert caught.value.code == 1002

        nursery.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await scripted_server.accept_connection()
            await peer.accept()
            await peer.send_frame(0x3, b"reserved opcode")
            closed = await peer.wait_for_close(answer=False)
            await peer.drop()
    assert closed.code == 1002


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        ("drop", trio_mws.WebErrorStatus.DISCONNECTED),
        ("reset", trio_mws.WebErrorStatus.CONNECTION_RESET),
    ],
)
async def test_drop_and_reset_are_seen_as_a_lost_connection(
    scripted_server: ScriptedServer, ending: str, status: trio_mws.WebErrorStatus
) -> None:
    async with trio.open_nursery() as nursery:

        async def client() -> None:
            async with trio_mws.open_message_websocket(scripted_server.url) as ws:
                with pytest.raises(trio_mws.ConnectionClosed) as caught:
                    await ws.receive()
                assert caught.value.code == 1006
                assert caught.value.status is status
                assert ws.closed is None

        nursery.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await scripted_server.accept_connection()
            await peer.accept()
            await (peer.drop() if ending == "drop" else peer.reset())


async def test_close_mid_conversation_ends_the_clients_iteration_with_the_code(
    scripted_server: ScriptedServer,
) -> None:
    async with trio.open_nursery() as nursery:

        async def client() -> None:
            async with trio_mws.open_message_websocket(scripted_server.url) as ws:
                events = [event async for event in ws.events()]
                assert events[-1] == trio_mws.Closed(1008, "policy", initiated_locally=False)

        nursery.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await scripted_server.accept_connection()
            await peer.accept()
            await peer.close(1008, "policy")
            await peer.wait_for_close()
    assert peer.close_code == 1008


async def test_a_stalled_server_bounds_the_clients_close_by_close_timeout(
    scripted_server: ScriptedServer,
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_accept_then_stall, scripted_server)
        start = trio.current_time()
        async with trio_mws.open_message_websocket(scripted_server.url, close_timeout=0.2) as ws:
            pass
        assert trio.current_time() - start < PROMPTLY
        assert ws.state is trio_mws.WebSocketState.CLOSED
        assert ws.closed is None  # the server never answered the close frame
        nursery.cancel_scope.cancel()


async def _accept_then_stall(server: ScriptedServer) -> None:
    peer = await server.accept_connection()
    await peer.accept()
    await peer.stall()


async def test_a_server_that_stops_reading_pushes_back_on_the_client() -> None:
    message = b"x" * 65536
    count = 200
    done = trio.Event()
    async with (
        open_scripted_server(receive_buffer_size=4096) as server,
        trio.open_nursery() as nursery,
    ):

        async def client() -> None:
            async with trio_mws.open_message_websocket(server.url) as ws:
                for _ in range(count):
                    await ws.send(message)
                done.set()

        nursery.start_soon(client)
        peer = await server.accept_connection()
        await peer.accept()
        # The server reads nothing while the client sends 12.5 MiB: it cannot finish.
        with trio.move_on_after(1.0):
            await done.wait()
        assert not done.is_set()
        with trio.fail_after(30):
            for _ in range(count):
                assert (await peer.receive_message()).data == message
            await peer.wait_for_close()
    assert done.is_set()


async def test_compression_both_ways() -> None:
    async with open_scripted_server() as server, trio.open_nursery() as nursery:

        async def client() -> None:
            async with trio_mws.open_message_websocket(server.url, compression=True) as ws:
                event = await ws.receive()
                await ws.send(event.text * 2)

        nursery.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await server.accept_connection()
            assert peer.request.offers_compression
            await peer.accept(compression=True)
            await peer.send_text("squeeze me " * 100, compress=True)
            echoed = await peer.receive_message()
            await peer.wait_for_close()
    assert echoed.text == "squeeze me " * 200
    assert peer.frames[0].rsv1  # the client compressed its message


async def test_wss_with_a_trustme_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with open_scripted_server(ssl_context=server_context) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        async with trio.open_nursery() as nursery:

            async def client() -> None:
                async with trio_mws.open_message_websocket(
                    server.url, ssl_context=client_context
                ) as ws:
                    assert (await ws.receive()).text == "secure"

            nursery.start_soon(client)
            with trio.fail_after(PROMPTLY):
                peer = await server.accept_connection()
                await peer.accept()
                await peer.send_text("secure")
                await peer.wait_for_close()
    assert peer.close_code == 1000


async def test_serve_scripted_runs_a_handler_per_connection(nursery: trio.Nursery) -> None:
    seen: list[str] = []

    async def handler(peer: ScriptedConnection) -> None:
        await peer.accept()
        try:
            while True:
                seen.append((await peer.receive_message()).text)
        except ClientClosed:
            await peer.close(1000)

    url = await nursery.start(serve_scripted, handler)
    for word in ("first", "second"):
        async with trio_mws.open_message_websocket(url) as ws:
            await ws.send(word)
    assert seen == ["first", "second"]
