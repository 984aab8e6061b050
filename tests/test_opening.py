"""Opening: URI rules, connect's state rules, redirects, authentication, request headers,
subprotocols and the three ways in (``open_message_websocket``, ``MessageWebSocket``,
``run_message_websocket``)."""

from __future__ import annotations

import pytest
import trio

import trio_mws
from trio_mws import (
    ConnectError,
    HandshakeError,
    MessageWebSocket,
    MessageWebSocketControl,
    PasswordCredential,
    WebErrorStatus,
    WebSocketState,
)

from .opening_helpers import (
    RawServer,
    accept_and_close,
    answer,
    basic,
    echo_frames,
    finish_close,
    port_of,
    refused_url,
    request_headers,
    request_line,
    send_101,
    state,
)
from .rawserver import RawPeer

# -- URI validation: before any I/O -----------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:1/",
        "https://127.0.0.1:1/",
        "ftp://127.0.0.1/",
        "/chat",
        "127.0.0.1:1/chat",
        "ws:///chat",
        "ws://",
        "ws://127.0.0.1:1/chat#fragment",
        "ws://127.0.0.1:1/#",
        "ws://127.0.0.1:99999/",
        "ws://127.0.0.1:port/",
        "ws://127.0.0.1:1/a b",
        "ws://127.0.0.1:1/\r\nX-Injected: 1",
        "",
    ],
)
async def test_bad_uri_is_value_error_before_io(uri: str) -> None:
    ws = MessageWebSocket()
    async with ws:
        with pytest.raises(ValueError):
            await ws.connect(uri)
        # Nothing happened: the socket may still be configured and connected.
        assert state(ws) is WebSocketState.CONNECTING
        ws.control.connect_timeout = 5
        ws.set_request_header("X-After", "bad uri")


@pytest.mark.parametrize("uri", [None, b"ws://127.0.0.1:1/", 42])
async def test_non_str_uri_is_type_error(uri: object) -> None:
    async with MessageWebSocket() as ws:
        with pytest.raises(TypeError):
            await ws.connect(uri)  # type: ignore[arg-type]


async def test_bad_uri_with_open_message_websocket() -> None:
    with pytest.raises(ValueError):
        async with trio_mws.open_message_websocket("http://127.0.0.1:1/"):
            pass


async def test_uppercase_scheme_and_query(raw_server: RawServer) -> None:
    lines: list[str] = []

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        lines.append(request_line(peer))
        await send_101(peer)
        await finish_close(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url.replace("ws://", "WS://") + "chat?room=1&x=%20"):
        pass
    assert lines == ["GET /chat?room=1&x=%20 HTTP/1.1"]


# -- connect's state rules ----------------------------------------------------------------------


async def test_connect_outside_async_with_is_runtime_error(echo_url: str) -> None:
    ws = MessageWebSocket()
    with pytest.raises(RuntimeError):
        await ws.connect(echo_url)
    # Not frozen by the refused call: still configurable, and usable in a block.
    ws.control.max_message_size = 1024
    async with ws:
        await ws.connect(echo_url)
        assert state(ws) is WebSocketState.OPEN


async def test_connect_twice_is_runtime_error(echo_url: str) -> None:
    async with MessageWebSocket() as ws:
        await ws.connect(echo_url)
        with pytest.raises(RuntimeError):
            await ws.connect(echo_url)
        assert state(ws) is WebSocketState.OPEN
        await ws.send("still open")
        assert (await ws.receive()).text == "still open"


async def test_connect_after_close_is_runtime_error(echo_url: str) -> None:
    async with MessageWebSocket() as ws:
        await ws.connect(echo_url)
        await ws.close()
        with pytest.raises(RuntimeError):
            await ws.connect(echo_url)


async def test_connect_while_connecting_is_runtime_error(raw_server: RawServer) -> None:
    release = trio.Event()
    requested = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        requested.set()
        await release.wait()
        await send_101(peer)
        await finish_close(peer)

    url = await raw_server(handler)
    async with MessageWebSocket() as ws, trio.open_nursery() as nursery:
        nursery.start_soon(ws.connect, url)
        await requested.wait()
        assert state(ws) is WebSocketState.CONNECTING
        with pytest.raises(RuntimeError):
            await ws.connect(url)
        release.set()
    assert ws.closed is not None and ws.closed.code == 1000


async def test_reconnect_after_failed_connect(echo_url: str) -> None:
    ws = MessageWebSocket()
    ws.control.connect_timeout = 30
    async with ws:
        with refused_url() as refused, pytest.raises(ConnectError) as info:
            await ws.connect(refused)
        assert info.value.status is WebErrorStatus.CANNOT_CONNECT
        assert state(ws) is WebSocketState.CONNECTING
        # Windows allows reconfiguring after a failed connect.
        ws.control.connect_timeout = 10
        ws.control.supported_protocols.append("chat.v1")
        ws.set_request_header("X-Second", "try")
        await ws.connect(echo_url)
        assert state(ws) is WebSocketState.OPEN
        assert ws.control.connect_timeout == 10
        assert ws.information.protocol == "chat.v1"
        await ws.send(b"second time")
        assert (await ws.receive()).data == b"second time"


async def test_reconnect_after_cancelled_connect(raw_server: RawServer, echo_url: str) -> None:
    requested = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        requested.set()
        await peer.wait_eof()

    url = await raw_server(handler)
    async with MessageWebSocket() as ws:
        async with trio.open_nursery() as nursery:

            async def cancel_soon() -> None:
                await requested.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(cancel_soon)
            await ws.connect(url)
            pytest.fail("connected to a server that never answered")
        assert nursery.cancel_scope.cancelled_caught
        ws.control.max_redirects = 2  # unfrozen
        await ws.connect(echo_url)
        assert state(ws) is WebSocketState.OPEN


# -- the upgrade response ----------------------------------------------------------------------


async def test_upgrade_response_headers_are_case_insensitive(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
            "connection: keep-alive, UPGRADE\r\n"
            f"sec-websocket-accept: {peer.accept_value()}\r\n\r\n"
        )
        await peer.send(response.encode())
        await echo_frames(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        await ws.send("case")
        assert (await ws.receive()).text == "case"


async def test_frames_in_the_same_packet_as_the_101(raw_server: RawServer) -> None:
    # Bytes that follow the response head belong to the WebSocket stream: not lost.
    async def handler(peer: RawPeer) -> None:
        await peer.accept(after=b"\x81\x05early\x82\x02\x00\xff")
        await finish_close(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        first = await ws.receive()
        second = await ws.receive()
    assert (first.message_type, first.text) == (trio_mws.SocketMessageType.UTF8, "early")
    assert (second.message_type, second.data) == (trio_mws.SocketMessageType.BINARY, b"\x00\xff")


# -- subprotocols -------------------------------------------------------------------------------


async def test_server_accepts_a_subprotocol(raw_server: RawServer) -> None:
    offered: list[str | None] = []

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        offered.append(peer.request_header("Sec-WebSocket-Protocol"))
        await send_101(peer, "Sec-WebSocket-Protocol: chat.v2\r\n")
        await finish_close(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url, protocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.information.protocol == "chat.v2"
    assert offered == ["chat.v1, chat.v2"]


async def test_server_chooses_no_subprotocol(raw_server: RawServer) -> None:
    url = await raw_server(accept_and_close)
    async with trio_mws.open_message_websocket(url, protocols=["chat.v1"]) as ws:
        assert ws.information.protocol is None


async def test_no_subprotocol_header_without_protocols(raw_server: RawServer) -> None:
    seen: list[str | None] = []

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        seen.append(peer.request_header("Sec-WebSocket-Protocol"))
        await send_101(peer)
        await finish_close(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url):
        pass
    assert seen == [None]


@pytest.mark.parametrize(
    "protocols",
    [["chat", "chat"], ["a b"], ["chat,v2"], [""], ["chat/1"], ["ch\u00e4t"]],
)
async def test_invalid_supported_protocols(echo_url: str, protocols: list[str]) -> None:
    with pytest.raises(ValueError):
        async with trio_mws.open_message_websocket(echo_url, protocols=protocols):
            pass
    control = MessageWebSocketControl()
    with pytest.raises(ValueError):
        control.supported_protocols = protocols


async def test_invalid_protocol_appended_in_place_fails_at_connect(echo_url: str) -> None:
    ws = MessageWebSocket()
    ws.control.supported_protocols.append("chat")
    ws.control.supported_protocols.append("chat")  # in place: only connect can see it
    async with ws:
        with pytest.raises(ValueError):
            await ws.connect(echo_url)
        # ValueError before any I/O: the socket is not stuck "connecting".
        ws.control.supported_protocols = ["chat"]
        ws.set_request_header("X-Fixed", "yes")
        await ws.connect(echo_url)
        assert ws.information.protocol == "chat"


async def test_protocols_must_be_a_list_not_a_string(echo_url: str) -> None:
    with pytest.raises(TypeError):
        async with trio_mws.open_message_websocket(echo_url, protocols="chat"):
            pass


# -- redirects ----------------------------------------------------------------------------------


def _redirect(code: int, location: str) -> bytes:
    return (
        f"HTTP/1.1 {code} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_redirect_to_another_server(raw_server: RawServer, code: int) -> None:
    final_paths: list[str] = []

    async def final(peer: RawPeer) -> None:
        await peer.read_request()
        final_paths.append(request_line(peer))
        await send_101(peer)
        await echo_frames(peer)

    final_url = await raw_server(final)

    async def first(peer: RawPeer) -> None:
        await answer(peer, _redirect(code, final_url + "landed?x=1"))

    url = await raw_server(first)
    async with trio_mws.open_message_websocket(url) as ws:
        assert ws.information.remote_address == ("127.0.0.1", port_of(final_url))
        await ws.send("after redirect")
        assert (await ws.receive()).text == "after redirect"
    assert final_paths == ["GET /landed?x=1 HTTP/1.1"]


async def test_redirect_to_echo_server(raw_server: RawServer, echo_url: str) -> None:
    async def first(peer: RawPeer) -> None:
        await answer(peer, _redirect(301, echo_url))

    url = await raw_server(first)
    async with trio_mws.open_message_websocket(url) as ws:
        assert ws.information.handshake_response is not None
        assert ws.information.handshake_response.status_code == 101
        await ws.send(b"\x01\x02")
        assert (await ws.receive()).data == b"\x01\x02"


async def test_redirect_with_http_scheme_location(raw_server: RawServer, echo_url: str) -> None:
    async def first(peer: RawPeer) -> None:
        await answer(peer, _redirect(302, echo_url.replace("ws://", "http://")))

    url = await raw_server(first)
    async with trio_mws.open_message_websocket(url) as ws:
        assert ws.information.remote_address == ("127.0.0.1", port_of(echo_url))


async def test_relative_redirect(raw_server: RawServer) -> None:
    lines: list[str] = []

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        lines.append(request_line(peer))
        if request_line(peer).startswith("GET /old"):
            await peer.send(_redirect(307, "/new/place?y=2"))
            return
        await send_101(peer)
        await finish_close(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url + "old/path") as ws:
        assert state(ws) is WebSocketState.OPEN
    assert lines == ["GET /old/path HTTP/1.1", "GET /new/place?y=2 HTTP/1.1"]


async def test_redirect_loop_fails_after_max_redirects(raw_server: RawServer) -> None:
    requests: list[str] = []

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        requests.append(request_line(peer))
        await peer.send(_redirect(302, "/again"))

    url = await raw_server(handler)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url, max_redirects=3):
            pass
    assert info.value.status is WebErrorStatus.REDIRECT_FAILED
    assert info.value.status_code == 302
    assert len(requests) == 4  # the first request and 3 redirects followed


async def test_no_redirects_allowed(raw_server: RawServer, echo_url: str) -> None:
    async def first(peer: RawPeer) -> None:
        await answer(peer, _redirect(301, echo_url))

    url = await raw_server(first)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url, max_redirects=0):
            pass
    assert info.value.status is WebErrorStatus.REDIRECT_FAILED


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/x", "ws://", "mailto:a@example.org"])
async def test_redirect_to_unusable_location(raw_server: RawServer, location: str) -> None:
    async def first(peer: RawPeer) -> None:
        await answer(peer, _redirect(302, location))

    url = await raw_server(first)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url):
            pass
    assert info.value.status is WebErrorStatus.REDIRECT_FAILED
    assert info.value.status_code == 302


async def test_redirect_to_refused_port(raw_server: RawServer) -> None:
    with refused_url() as refused:

        async def first(peer: RawPeer) -> None:
            await answer(peer, _redirect(302, refused))

        url = await raw_server(first)
        with pytest.raises(ConnectError) as info:
            async with trio_mws.open_message_websocket(url):
                pass
    assert info.value.status is WebErrorStatus.CANNOT_CONNECT


# -- authentication -----------------------------------------------------------------------------


class BasicServer:
    """Answers 401 unless the request carries the expected Basic credentials."""

    def __init__(self, user: str, password: str, challenge: str = 'Basic realm="chat"') -> None:
        self.expected = basic(user, password)
        self.challenge = challenge
        self.seen: list[str | None] = []
        self.hosts: list[str | None] = []

    async def __call__(self, peer: RawPeer) -> None:
        await peer.read_request()
        authorization = peer.request_header("Authorization")
        self.seen.append(authorization)
        self.hosts.append(peer.request_header("Host"))
        if authorization != self.expected:
            body = b"who are you?"
            await peer.send(
                (
                    f"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {self.challenge}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            return
        await send_101(peer)
        await finish_close(peer)


async def test_basic_auth_with_server_credential(raw_server: RawServer) -> None:
    server = BasicServer("alice", "s3cret")
    url = await raw_server(server)
    credential = PasswordCredential("alice", "s3cret")
    async with trio_mws.open_message_websocket(url, server_credential=credential) as ws:
        assert state(ws) is WebSocketState.OPEN
    assert server.seen == [None, basic("alice", "s3cret")]


async def test_basic_auth_with_uri_userinfo(raw_server: RawServer) -> None:
    server = BasicServer("al@ice", "p:w d")
    url = await raw_server(server)
    with_userinfo = url.replace("ws://", "ws://al%40ice:p%3Aw%20d@")
    async with trio_mws.open_message_websocket(with_userinfo) as ws:
        assert state(ws) is WebSocketState.OPEN
    assert server.seen == [None, basic("al@ice", "p:w d")]
    # The userinfo never appears in the Host header.
    assert server.hosts == [f"127.0.0.1:{port_of(url)}"] * 2


async def test_server_credential_wins_over_userinfo(raw_server: RawServer) -> None:
    server = BasicServer("bob", "right")
    url = await raw_server(server)
    async with trio_mws.open_message_websocket(
        url.replace("ws://", "ws://bob:wrong@"),
        server_credential=PasswordCredential("bob", "right"),
    ):
        pass
    assert server.seen == [None, basic("bob", "right")]


async def test_401_without_credential(raw_server: RawServer) -> None:
    server = BasicServer("alice", "s3cret")
    url = await raw_server(server)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url):
            pass
    error = info.value
    assert error.status is WebErrorStatus.UNAUTHORIZED
    assert error.status_code == 401
    assert ("WWW-Authenticate", 'Basic realm="chat"') in error.headers
    assert error.body == b"who are you?"
    assert server.seen == [None]


async def test_wrong_credential_is_tried_once(raw_server: RawServer) -> None:
    server = BasicServer("alice", "s3cret")
    url = await raw_server(server)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(
            url, server_credential=PasswordCredential("alice", "guess")
        ):
            pass
    assert info.value.status is WebErrorStatus.UNAUTHORIZED
    assert server.seen == [None, basic("alice", "guess")]


async def test_non_basic_challenge_is_not_answered(raw_server: RawServer) -> None:
    server = BasicServer("alice", "s3cret", challenge='Bearer realm="chat"')
    url = await raw_server(server)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(
            url, server_credential=PasswordCredential("alice", "s3cret")
        ):
            pass
    assert info.value.status is WebErrorStatus.UNAUTHORIZED
    assert server.seen == [None]  # the password was not sent to a non-Basic challenge


# -- credentials stay with their origin ---------------------------------------------------------
# Two raw servers on 127.0.0.1 listen on two ports: two origins (scheme, host, port).


async def _redirected_to(raw_server: RawServer, other: BasicServer) -> str:
    """A URL whose server redirects (302) to a second server, ``other``, on another port."""
    other_url = await raw_server(other)

    async def first(peer: RawPeer) -> None:
        await answer(peer, _redirect(302, other_url + "elsewhere"))

    return await raw_server(first)


async def test_server_credential_is_not_sent_to_another_origin(raw_server: RawServer) -> None:
    other = BasicServer("alice", "s3cret")
    url = await _redirected_to(raw_server, other)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(
            url, server_credential=PasswordCredential("alice", "s3cret")
        ):
            pytest.fail("the other origin got the password")
    assert info.value.status is WebErrorStatus.UNAUTHORIZED
    assert info.value.status_code == 401
    assert other.seen == [None]


async def test_uri_userinfo_is_not_sent_to_another_origin(raw_server: RawServer) -> None:
    other = BasicServer("alice", "s3cret")
    url = await _redirected_to(raw_server, other)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url.replace("ws://", "ws://alice:s3cret@")):
            pytest.fail("the other origin got the password")
    assert info.value.status is WebErrorStatus.UNAUTHORIZED
    assert other.seen == [None]


async def test_authorization_and_cookie_headers_stay_with_their_origin(
    raw_server: RawServer,
) -> None:
    seen: list[list[tuple[str, str]]] = []

    async def home(peer: RawPeer) -> None:
        # The home origin redirects to the other one, which sends the client back home.
        await peer.read_request()
        seen.append(request_headers(peer))
        if request_line(peer).startswith("GET /start"):
            await peer.send(_redirect(302, other_url))
            return
        await send_101(peer)
        await finish_close(peer)

    async def other(peer: RawPeer) -> None:
        await peer.read_request()
        seen.append(request_headers(peer))
        await peer.send(_redirect(302, home_url + "back"))

    home_url = await raw_server(home)
    other_url = await raw_server(other)
    secrets = {"Authorization": "Bearer t0ken", "Cookie": "session=abc"}
    async with trio_mws.open_message_websocket(home_url + "start", headers=secrets):
        pass
    first, at_other, back_home = ({name for name, _ in headers} for headers in seen)
    assert {"authorization", "cookie"} <= first
    assert not {"authorization", "cookie"} & at_other
    # Back on the home origin at a place the other origin chose: still none (as browsers).
    assert not {"authorization", "cookie"} & back_home


async def test_same_origin_redirect_keeps_credentials(raw_server: RawServer) -> None:
    server = BasicServer("alice", "s3cret")
    lines: list[str] = []

    async def handler(peer: RawPeer) -> None:
        if not lines:
            await peer.read_request()
            lines.append(request_line(peer))
            await peer.send(_redirect(307, "/chat"))
            return
        await server(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(
        url, server_credential=PasswordCredential("alice", "s3cret")
    ) as ws:
        assert state(ws) is WebSocketState.OPEN
    assert server.seen == [None, basic("alice", "s3cret")]


# -- request headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bad Name", "v"),
        ("Bad:Name", "v"),
        ("", "v"),
        ("X-\u00e9", "v"),
        ("X-A", "line\r\nX-Injected: 1"),
        ("X-A", "cr\rcr"),
        ("X-A", "lf\nlf"),
        ("X-A", "nul\x00"),
        ("Host", "evil.example"),
        ("host", "evil.example"),
        ("Upgrade", "h2c"),
        ("Connection", "close"),
        ("Sec-WebSocket-Key", "x"),
        ("Sec-WebSocket-Version", "8"),
        ("sec-websocket-protocol", "chat"),
        ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ("Sec-WebSocket-Accept", "x"),
        ("Sec-WebSocket-Whatever", "x"),
    ],
)
def test_set_request_header_rejects(name: str, value: str) -> None:
    ws = MessageWebSocket()
    with pytest.raises(ValueError):
        ws.set_request_header(name, value)


def test_set_request_header_type_errors() -> None:
    ws = MessageWebSocket()
    with pytest.raises(TypeError):
        ws.set_request_header("X-A", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ws.set_request_header(b"X-A", "1")  # type: ignore[arg-type]


async def test_set_request_header_after_connect(echo_url: str) -> None:
    async with MessageWebSocket() as ws:
        await ws.connect(echo_url)
        with pytest.raises(RuntimeError):
            ws.set_request_header("X-Late", "1")


class HeaderCapture:
    """Records every request's headers, then accepts."""

    def __init__(self) -> None:
        self.requests: list[list[tuple[str, str]]] = []

    async def __call__(self, peer: RawPeer) -> None:
        await peer.read_request()
        self.requests.append(request_headers(peer))
        await send_101(peer)
        await finish_close(peer)

    def values(self, name: str) -> list[str]:
        (headers,) = self.requests
        return [value for key, value in headers if key == name.lower()]


async def test_request_headers_are_sent(raw_server: RawServer) -> None:
    capture = HeaderCapture()
    url = await raw_server(capture)
    ws = MessageWebSocket()
    ws.set_request_header("X-Client", "demo")
    ws.set_request_header("X-Replaced", "first")
    ws.set_request_header("x-replaced", "second")  # same name, other case: replaces
    ws.set_request_header("X-Empty", "")
    ws.set_request_header("Authorization", "Bearer abc.def")
    async with ws:
        await ws.connect(url)
    assert capture.values("X-Client") == ["demo"]
    assert capture.values("X-Replaced") == ["second"]
    assert capture.values("X-Empty") == [""]
    assert capture.values("Authorization") == ["Bearer abc.def"]
    assert capture.values("Host") == [f"127.0.0.1:{port_of(url)}"]
    assert capture.values("Upgrade") == ["websocket"]
    assert capture.values("Sec-WebSocket-Version") == ["13"]


async def test_headers_argument_of_open_message_websocket(raw_server: RawServer) -> None:
    capture = HeaderCapture()
    url = await raw_server(capture)
    async with trio_mws.open_message_websocket(url, headers={"X-Token": "t0k3n"}):
        pass
    assert capture.values("X-Token") == ["t0k3n"]


async def test_bad_headers_argument(echo_url: str) -> None:
    with pytest.raises(ValueError):
        async with trio_mws.open_message_websocket(echo_url, headers={"Host": "evil"}):
            pass


async def test_default_user_agent(raw_server: RawServer) -> None:
    capture = HeaderCapture()
    url = await raw_server(capture)
    async with trio_mws.open_message_websocket(url):
        pass
    assert capture.values("User-Agent") == [f"trio-mws/{trio_mws.__version__}"]
    assert capture.values("Origin") == []


async def test_user_agent_none_omits_the_header(raw_server: RawServer) -> None:
    capture = HeaderCapture()
    url = await raw_server(capture)
    async with trio_mws.open_message_websocket(url, user_agent=None):
        pass
    assert capture.values("User-Agent") == []


async def test_custom_user_agent_and_origin(raw_server: RawServer) -> None:
    capture = HeaderCapture()
    url = await raw_server(capture)
    async with trio_mws.open_message_websocket(
        url, user_agent="demo/2.0", origin="https://app.example"
    ):
        pass
    assert capture.values("User-Agent") == ["demo/2.0"]
    assert capture.values("Origin") == ["https://app.example"]


async def test_user_agent_request_header_replaces_the_default(raw_server: RawServer) -> None:
    # An HTTP request must not carry two User-Agent (or Origin) fields: the header the user
    # set explicitly replaces the control's value.
    capture = HeaderCapture()
    url = await raw_server(capture)
    ws = MessageWebSocket(MessageWebSocketControl(origin="https://a.example"))
    ws.set_request_header("User-Agent", "mine/1.0")
    ws.set_request_header("Origin", "https://b.example")
    async with ws:
        await ws.connect(url)
    assert capture.values("User-Agent") == ["mine/1.0"]
    assert capture.values("Origin") == ["https://b.example"]


async def test_request_headers_survive_a_redirect(raw_server: RawServer) -> None:
    capture = HeaderCapture()
    final_url = await raw_server(capture)

    async def first(peer: RawPeer) -> None:
        await answer(peer, _redirect(302, final_url))

    url = await raw_server(first)
    async with trio_mws.open_message_websocket(url, headers={"X-Keep": "me"}):
        pass
    assert capture.values("X-Keep") == ["me"]
    assert capture.values("Host") == [f"127.0.0.1:{port_of(final_url)}"]


# -- the ways in --------------------------------------------------------------------------------


async def test_open_with_control_object(echo_url: str) -> None:
    control = MessageWebSocketControl(max_message_size=1000, connect_timeout=5)
    async with trio_mws.open_message_websocket(echo_url, control=control) as ws:
        assert ws.control.max_message_size == 1000
        assert ws.control.connect_timeout == 5
        with pytest.raises(RuntimeError):
            ws.control.max_message_size = 2000  # frozen now
        await ws.send("x")
        assert (await ws.receive()).text == "x"


async def test_open_with_control_keywords(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(
        echo_url,
        max_message_size=1000,
        message_queue_size=4,
        receive_mode=trio_mws.MessageWebSocketReceiveMode.PARTIAL_MESSAGE,
    ) as ws:
        assert ws.control.max_message_size == 1000
        assert ws.control.message_queue_size == 4
        assert ws.control.receive_mode is trio_mws.MessageWebSocketReceiveMode.PARTIAL_MESSAGE


async def test_control_and_keywords_together_is_type_error(echo_url: str) -> None:
    with pytest.raises(TypeError):
        async with trio_mws.open_message_websocket(
            echo_url, control=MessageWebSocketControl(), max_message_size=10
        ):
            pass


async def test_unknown_control_keyword_is_type_error(echo_url: str) -> None:
    with pytest.raises(TypeError):
        async with trio_mws.open_message_websocket(echo_url, max_mesage_size=10):
            pass


async def test_run_message_websocket(echo_url: str) -> None:
    returned = trio.Event()

    async def run(*, task_status: trio.TaskStatus[MessageWebSocket]) -> None:
        await trio_mws.run_message_websocket(
            echo_url, protocols=["chat.v1"], max_message_size=4096, task_status=task_status
        )
        returned.set()

    async with trio.open_nursery() as nursery:
        ws: MessageWebSocket = await nursery.start(run)
        assert state(ws) is WebSocketState.OPEN
        assert ws.information.protocol == "chat.v1"
        assert ws.control.max_message_size == 4096
        await ws.send("via nursery.start")
        assert (await ws.receive()).text == "via nursery.start"
        assert not returned.is_set()
        await ws.close()
        with trio.fail_after(10):  # generous: the task must return promptly after close
            await returned.wait()
    assert ws.closed is not None and ws.closed.initiated_locally
    assert state(ws) is WebSocketState.CLOSED


async def test_close_without_code_sends_an_empty_close_frame(raw_server: RawServer) -> None:
    # API.md: ``close()`` with code=None sends an empty close frame; Closed reports 1005.
    payloads: list[bytes] = []

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        _fin, opcode, payload = await peer.read_frame()
        assert opcode == 8
        payloads.append(payload)
        await peer.send(b"\x88\x00")  # answer with an empty close frame too

    url = await raw_server(handler)
    async with trio.open_nursery() as nursery:
        ws: MessageWebSocket = await nursery.start(trio_mws.run_message_websocket, url)
        await ws.close()
    assert payloads == [b""]
    assert ws.closed == trio_mws.Closed(1005, "", initiated_locally=True)


async def test_run_message_websocket_connect_error() -> None:
    with refused_url() as url:
        async with trio.open_nursery() as nursery:
            with pytest.raises(ConnectError) as info:
                await nursery.start(trio_mws.run_message_websocket, url)
    assert info.value.status is WebErrorStatus.CANNOT_CONNECT


async def test_run_message_websocket_returns_when_server_closes(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(b"\x88\x02\x03\xe8")  # close 1000
        await peer.read_close()

    url = await raw_server(handler)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            ws: MessageWebSocket = await nursery.start(trio_mws.run_message_websocket, url)
    assert ws.closed == trio_mws.Closed(1000, "", initiated_locally=False)
