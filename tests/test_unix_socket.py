"""``control.unix_socket_path``: the TCP stage replaced by a Unix socket; the URI still gives
the Host header, the resource and (for wss) the TLS server name."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trustme

import trio_mws
from trio_mws.testing import open_scripted_server

PROMPTLY = 5.0


def tls_contexts(name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``name`` and a client context trusting it."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def test_ws_over_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    async with open_scripted_server(unix_socket_path=path) as server, trio.open_nursery() as n:

        async def client() -> None:
            async with trio_mws.open_message_websocket(
                "ws://chat.example.test:8080/room?x=1", unix_socket_path=path
            ) as ws:
                assert ws.information.remote_address is None  # no (host, port) to show
                assert ws.information.timings is not None
                assert ws.information.timings.dns is None
                await ws.send("over unix")
                assert (await ws.receive()).text == "echo: over unix"

        n.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await server.accept_connection()
            assert peer.request.header("Host") == "chat.example.test:8080"
            assert peer.request.target == "/room?x=1"
            await peer.accept()
            message = await peer.receive_message()
            await peer.send_text("echo: " + message.text)
            await peer.wait_for_close()


async def test_wss_over_a_unix_socket_verifies_the_uri_host(tmp_path: Path) -> None:
    server_context, client_context = tls_contexts("secure.example.test")
    path = str(tmp_path / "wss.sock")
    async with (
        open_scripted_server(unix_socket_path=path, ssl_context=server_context) as server,
        trio.open_nursery() as nursery,
    ):

        async def client() -> None:
            async with trio_mws.open_message_websocket(
                "wss://secure.example.test/", unix_socket_path=path, ssl_context=client_context
            ) as ws:
                assert ws.information.server_certificate is not None
                assert ws.information.timings is not None
                assert ws.information.timings.tls is not None
                assert (await ws.receive()).text == "tls inside"

        nursery.start_soon(client)
        with trio.fail_after(PROMPTLY):
            peer = await server.accept_connection()
            await peer.accept()
            await peer.send_text("tls inside")
            await peer.wait_for_close()


async def test_wss_over_a_unix_socket_with_the_wrong_name_fails(tmp_path: Path) -> None:
    server_context, client_context = tls_contexts("other.example.test")
    path = str(tmp_path / "wss.sock")
    async with (
        open_scripted_server(unix_socket_path=path, ssl_context=server_context) as server,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_accept_quietly, server)
        with pytest.raises(trio_mws.CertificateError) as caught:
            async with trio_mws.open_message_websocket(
                "wss://secure.example.test/", unix_socket_path=path, ssl_context=client_context
            ):
                pass  # pragma: no cover - refused
        nursery.cancel_scope.cancel()
    assert caught.value.status is trio_mws.WebErrorStatus.CERTIFICATE_COMMON_NAME_IS_INCORRECT


async def _accept_quietly(server: trio_mws.testing.ScriptedServer) -> None:
    try:
        await server.accept_connection()
    except EOFError:
        pass


async def test_a_missing_unix_socket_is_cannot_connect(tmp_path: Path) -> None:
    with pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(
            "ws://localhost/", unix_socket_path=str(tmp_path / "nothing.sock")
        ):
            pass  # pragma: no cover - refused
    assert caught.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT
    assert "nothing.sock" in str(caught.value)
    assert caught.value.timings is not None
    assert caught.value.timings.handshake is None


def test_unix_socket_path_validation(tmp_path: Path) -> None:
    control = trio_mws.MessageWebSocketControl()
    assert control.unix_socket_path is None
    control.unix_socket_path = tmp_path / "a.sock"  # type: ignore[assignment]
    assert control.unix_socket_path == str(tmp_path / "a.sock")
    with pytest.raises(ValueError):
        control.unix_socket_path = ""
    with pytest.raises(ValueError):
        control.unix_socket_path = "bad\x00path"
    with pytest.raises(TypeError):
        control.unix_socket_path = 3  # type: ignore[assignment]
