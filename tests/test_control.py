"""``MessageWebSocketControl`` (defaults, validation, freezing) and
``MessageWebSocketInformation`` (addresses, handshake, counters, bandwidth)."""

from __future__ import annotations

import math
import ssl
from typing import Any

import pytest

import trio_mws
from trio_mws import (
    BandwidthStatistics,
    ChainValidationResult,
    ClientCertificate,
    ConnectError,
    HandshakeResponse,
    MessageWebSocket,
    MessageWebSocketControl,
    MessageWebSocketReceiveMode,
    PasswordCredential,
    SocketMessageType,
    SocketSslErrorSeverity,
    WebErrorStatus,
)

from .opening_helpers import RawServer, echo_frames, finish_close, port_of, refused_url, send_101
from .rawserver import RawPeer

# -- defaults ---------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "message_type": SocketMessageType.BINARY,
    "receive_mode": MessageWebSocketReceiveMode.FULL_MESSAGE,
    "max_message_size": 16 * 1024 * 1024,
    "message_queue_size": 16,
    "supported_protocols": [],
    "outbound_buffer_size_in_bytes": None,
    "server_credential": None,
    "proxy_credential": None,
    "proxy": "auto",
    "ignorable_server_certificate_errors": [],
    "client_certificate": None,
    "ssl_context": None,
    "desired_unsolicited_pong_interval": None,
    "actual_unsolicited_pong_interval": None,
    "ping_interval": 20,
    "ping_timeout": 20,
    "connect_timeout": 60,
    "close_timeout": 10,
    "compression": False,
    "max_redirects": 10,
    "user_agent": f"trio-mws/{trio_mws.__version__}",
    "origin": None,
}


@pytest.mark.parametrize(("name", "default"), list(DEFAULTS.items()))
def test_defaults(name: str, default: object) -> None:
    control = MessageWebSocket().control
    assert getattr(control, name) == default


def test_default_user_agent_version() -> None:
    assert trio_mws.__version__
    assert MessageWebSocketControl().user_agent == "trio-mws/" + trio_mws.__version__


def test_lists_are_not_shared_between_controls() -> None:
    first = MessageWebSocketControl()
    second = MessageWebSocketControl()
    first.supported_protocols.append("chat")
    first.ignorable_server_certificate_errors.append(ChainValidationResult.EXPIRED)
    assert second.supported_protocols == []
    assert second.ignorable_server_certificate_errors == []


def test_settable_values_round_trip() -> None:
    context = ssl.create_default_context()
    credential = PasswordCredential("u", "p")
    certificate = ClientCertificate("client.pem", "client.key", b"secret")
    values: dict[str, Any] = {
        "message_type": SocketMessageType.UTF8,
        "receive_mode": MessageWebSocketReceiveMode.PARTIAL_MESSAGE,
        "max_message_size": None,
        "message_queue_size": 1,
        "supported_protocols": ["a", "b.v2"],
        "outbound_buffer_size_in_bytes": 65536,
        "server_credential": credential,
        "proxy_credential": credential,
        "proxy": "socks5h://127.0.0.1:1080",
        "ignorable_server_certificate_errors": [ChainValidationResult.UNTRUSTED],
        "client_certificate": certificate,
        "ssl_context": context,
        "desired_unsolicited_pong_interval": 0.5,
        "ping_interval": None,
        "ping_timeout": None,
        "connect_timeout": 0.25,
        "close_timeout": 3,
        "compression": True,
        "max_redirects": 0,
        "user_agent": None,
        "origin": "https://example.org",
    }
    control = MessageWebSocketControl()
    for name, value in values.items():
        setattr(control, name, value)
        assert getattr(control, name) == value
    keyword = MessageWebSocketControl(**values)
    for name, value in values.items():
        assert getattr(keyword, name) == value
    for proxy in (None, "auto", "http://proxy.example:3128", "socks5://127.0.0.1:1"):
        control.proxy = proxy
        assert control.proxy == proxy


# -- validation ---------------------------------------------------------------------------------

TYPE_ERRORS: list[tuple[str, object]] = [
    ("message_type", "binary"),
    ("message_type", None),
    ("receive_mode", "full"),
    ("max_message_size", "1"),
    ("max_message_size", 1.5),
    ("max_message_size", True),
    ("message_queue_size", None),
    ("message_queue_size", 2.0),
    ("supported_protocols", "chat"),
    ("supported_protocols", [b"chat"]),
    ("supported_protocols", [1]),
    ("outbound_buffer_size_in_bytes", "big"),
    ("server_credential", ("user", "password")),
    ("proxy_credential", "user:password"),
    ("proxy", 8080),
    ("ignorable_server_certificate_errors", "UNTRUSTED"),
    ("client_certificate", "client.pem"),
    ("ssl_context", "default"),
    ("desired_unsolicited_pong_interval", "1"),
    ("ping_interval", "20"),
    ("ping_timeout", True),
    ("connect_timeout", None),
    ("close_timeout", None),
    ("compression", 1),
    ("compression", None),
    ("max_redirects", 1.0),
    ("max_redirects", None),
    ("user_agent", b"agent"),
    ("origin", 5),
]

VALUE_ERRORS: list[tuple[str, object]] = [
    ("max_message_size", 0),
    ("max_message_size", -1),
    ("message_queue_size", 0),
    ("outbound_buffer_size_in_bytes", 0),
    ("supported_protocols", ["chat", "chat"]),
    ("supported_protocols", ["two words"]),
    ("supported_protocols", [""]),
    ("proxy", "ftp://proxy.example"),
    ("proxy", "proxy.example:3128"),
    ("ignorable_server_certificate_errors", [99]),
    ("desired_unsolicited_pong_interval", 0),
    ("ping_interval", -1),
    ("ping_interval", math.nan),
    ("ping_timeout", math.inf),
    ("connect_timeout", 0),
    ("close_timeout", -0.5),
    ("max_redirects", -1),
    ("user_agent", "agent\r\nX-Injected: 1"),
    ("origin", "https://a.example\n"),
]


@pytest.mark.parametrize(("name", "value"), TYPE_ERRORS)
def test_invalid_type(name: str, value: object) -> None:
    control = MessageWebSocketControl()
    before = getattr(control, name)
    with pytest.raises(TypeError):
        setattr(control, name, value)
    assert getattr(control, name) == before
    with pytest.raises(TypeError):
        MessageWebSocketControl(**{name: value})


@pytest.mark.parametrize(("name", "value"), VALUE_ERRORS)
def test_invalid_value(name: str, value: object) -> None:
    control = MessageWebSocketControl()
    before = getattr(control, name)
    with pytest.raises(ValueError):
        setattr(control, name, value)
    assert getattr(control, name) == before
    with pytest.raises(ValueError):
        MessageWebSocketControl(**{name: value})


def test_unknown_field() -> None:
    control = MessageWebSocketControl()
    with pytest.raises(AttributeError):
        control.max_mesage_size = 5
    with pytest.raises(TypeError):
        MessageWebSocketControl(max_mesage_size=5)


def test_actual_unsolicited_pong_interval_is_read_only() -> None:
    control = MessageWebSocketControl()
    with pytest.raises(AttributeError):
        control.actual_unsolicited_pong_interval = 1.0  # type: ignore[misc]


def test_password_credential_validation() -> None:
    assert PasswordCredential("user").password == ""
    with pytest.raises(ValueError):
        PasswordCredential("us:er", "pw")
    with pytest.raises(TypeError):
        PasswordCredential(b"user", "pw")  # type: ignore[arg-type]


def test_control_repr_hides_credentials() -> None:
    control = MessageWebSocketControl(
        server_credential=PasswordCredential("u", "hunter2"),
        proxy_credential=PasswordCredential("p", "swordfish"),
    )
    assert "hunter2" not in repr(control)
    assert "swordfish" not in repr(control)


def test_message_websocket_requires_a_control() -> None:
    with pytest.raises(TypeError):
        MessageWebSocket(control={"max_message_size": 5})  # type: ignore[arg-type]
    control = MessageWebSocketControl()
    assert MessageWebSocket(control).control is control


# -- freezing -----------------------------------------------------------------------------------


async def test_frozen_after_connect(echo_url: str) -> None:
    async with MessageWebSocket() as ws:
        await ws.connect(echo_url)
        control = ws.control
        for name, value in [
            ("max_message_size", 10),
            ("receive_mode", MessageWebSocketReceiveMode.PARTIAL_MESSAGE),
            ("supported_protocols", ["late"]),
            ("connect_timeout", 1),
            ("close_timeout", 1),
            ("ping_interval", None),
            ("user_agent", None),
            ("compression", True),
            ("server_credential", None),
            ("desired_unsolicited_pong_interval", 1),
        ]:
            before = getattr(control, name)
            with pytest.raises(RuntimeError):
                setattr(control, name, value)
            assert getattr(control, name) == before
        # Invalid values after connect: still refused (with some error), never stored.
        with pytest.raises((RuntimeError, ValueError, TypeError)):
            control.max_message_size = -5


async def test_message_type_changes_after_connect(echo_url: str) -> None:
    async with MessageWebSocket() as ws:
        await ws.connect(echo_url)
        await ws.send(b"binary by default")
        event = await ws.receive()
        assert event.message_type is SocketMessageType.BINARY
        ws.control.message_type = SocketMessageType.UTF8
        await ws.send(b"now text")
        event = await ws.receive()
        assert event.message_type is SocketMessageType.UTF8
        assert event.text == "now text"
        with pytest.raises(TypeError):
            ws.control.message_type = "text"  # type: ignore[assignment]


async def test_outbound_buffer_size_after_connect_is_ignored(echo_url: str) -> None:
    ws = MessageWebSocket(MessageWebSocketControl(outbound_buffer_size_in_bytes=256 * 1024))
    async with ws:
        await ws.connect(echo_url)
        ws.control.outbound_buffer_size_in_bytes = 1024  # no effect, no error (as on Windows)
        ws.control.outbound_buffer_size_in_bytes = None
        await ws.send(b"x" * 100_000)
        assert (await ws.receive()).data == b"x" * 100_000


async def test_unfrozen_after_failed_connect() -> None:
    ws = MessageWebSocket()
    async with ws:
        with refused_url() as url, pytest.raises(ConnectError):
            await ws.connect(url)
        ws.control.max_message_size = 1234
        ws.control.supported_protocols = ["x"]
        ws.control.connect_timeout = 1
        assert ws.control.max_message_size == 1234


async def test_actual_unsolicited_pong_interval_after_connect(echo_url: str) -> None:
    ws = MessageWebSocket(MessageWebSocketControl(desired_unsolicited_pong_interval=30))
    assert ws.control.actual_unsolicited_pong_interval is None
    async with ws:
        await ws.connect(echo_url)
        assert ws.control.actual_unsolicited_pong_interval == 30


async def test_one_control_reused_for_consecutive_connections(echo_url: str) -> None:
    # A reconnect loop with one ready control: each connection gets the same settings.
    control = MessageWebSocketControl(max_message_size=4096, supported_protocols=["chat"])
    for attempt in range(2):
        async with trio_mws.open_message_websocket(echo_url, control=control) as ws:
            assert ws.control.max_message_size == 4096
            assert ws.information.protocol == "chat"
            await ws.send(f"attempt {attempt}")
            assert (await ws.receive()).text == f"attempt {attempt}"


# -- information ----------------------------------------------------------------------------------


def test_information_before_connect() -> None:
    info = MessageWebSocket().information
    assert info.local_address is None
    assert info.remote_address is None
    assert info.protocol is None
    assert info.handshake_response is None
    assert info.server_certificate is None
    assert info.server_intermediate_certificates == ()
    assert info.server_certificate_errors == ()
    assert info.server_certificate_error_severity is SocketSslErrorSeverity.NONE
    assert info.latency is None
    assert (info.messages_sent, info.messages_received) == (0, 0)
    assert (info.bytes_sent, info.bytes_received) == (0, 0)
    assert info.bandwidth_statistics == BandwidthStatistics()


async def test_information_after_connect(echo_url: str) -> None:
    messages: list[str | bytes] = [b"a", b"bc" * 100, "d\u00e9f", b""]
    total = sum(len(m.encode() if isinstance(m, str) else m) for m in messages)
    async with trio_mws.open_message_websocket(echo_url) as ws:
        info = ws.information
        assert info.remote_address == ("127.0.0.1", port_of(echo_url))
        assert info.local_address is not None
        assert info.local_address[0] == "127.0.0.1"
        assert isinstance(info.local_address[1], int)
        assert info.local_address[1] not in (0, port_of(echo_url))
        response = info.handshake_response
        assert isinstance(response, HandshakeResponse)
        assert response.status_code == 101
        assert response.reason
        assert (response.get("upgrade") or "").lower() == "websocket"
        assert response.get("UPGRADE") == response.get("upgrade")
        assert any(name.lower() == "sec-websocket-accept" for name, _ in response.headers)
        for message in messages:
            await ws.send(message)
            received = await ws.receive()
            assert received.data == (message.encode() if isinstance(message, str) else message)
        assert info.messages_sent == len(messages)
        assert info.messages_received == len(messages)
        assert info.bytes_sent >= total
        assert info.bytes_received >= total
        stats = info.bandwidth_statistics
        assert isinstance(stats, BandwidthStatistics)
        for value in (
            stats.outbound_bits_per_second,
            stats.inbound_bits_per_second,
            stats.outbound_bits_per_second_instability,
            stats.inbound_bits_per_second_instability,
        ):
            assert isinstance(value, int)
            assert value >= 0
        assert isinstance(stats.outbound_bandwidth_peaked, bool)
        assert isinstance(stats.inbound_bandwidth_peaked, bool)
        latency = await ws.ping()
        assert info.latency == latency
        assert latency >= 0
    # Still readable after the close.
    assert info.messages_sent == len(messages)
    assert info.remote_address == ("127.0.0.1", port_of(echo_url))
    assert isinstance(info.bandwidth_statistics, BandwidthStatistics)


async def test_handshake_response_headers_in_order(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        await send_101(peer, "X-One: 1\r\nX-Two:  two  \r\nX-One: again\r\n")
        await echo_frames(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        response = ws.information.handshake_response
        assert response is not None
        assert response.reason == "Switching Protocols"
        extra = [(k, v) for k, v in response.headers if k.startswith("X-")]
        assert extra == [("X-One", "1"), ("X-Two", "two"), ("X-One", "again")]
        assert response.get("x-one") == "1"
        assert response.get("x-missing") is None
        assert response.get("x-missing", "d") == "d"


async def test_counters_count_received_messages_in_partial_mode(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        await send_101(peer)
        # One message in three frames, then a one-frame message.
        await peer.send(b"\x01\x03abc" + b"\x00\x02de" + b"\x80\x01f" + b"\x82\x02\x00\x01")
        await finish_close(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(
        url, receive_mode=MessageWebSocketReceiveMode.PARTIAL_MESSAGE
    ) as ws:
        chunks = []
        while True:
            event = await ws.receive()
            chunks.append(event.data)
            if event.message_type is SocketMessageType.BINARY:
                break
        assert b"".join(chunks) == b"abcdef\x00\x01"
        assert ws.information.messages_received == 2
        assert ws.information.bytes_received == 8


async def test_information_after_failed_connect() -> None:
    ws = MessageWebSocket()
    async with ws:
        with refused_url() as url, pytest.raises(ConnectError) as info:
            await ws.connect(url)
    assert info.value.status is WebErrorStatus.CANNOT_CONNECT
    assert ws.information.handshake_response is None
    assert ws.information.remote_address is None
