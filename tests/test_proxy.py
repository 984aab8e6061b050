"""The proxy stage: HTTP CONNECT (with Basic on 407) and SOCKS5, through real local proxies."""

from __future__ import annotations

import base64
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import pytest
import trio

import trio_mws
from trio_mws.control import MessageWebSocketControl
from trio_mws.proxy import choose_proxy
from trio_mws.uri import parse_uri


@dataclass
class ProxyLog:
    """What a test proxy saw."""

    requests: list[str] = field(default_factory=list)
    targets: list[tuple[str, int]] = field(default_factory=list)


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(sink)


async def _relay(client: trio.SocketStream, host: str, port: int) -> None:
    # Tests reach loopback only: a target elsewhere is a bug in the client under test, and
    # the proxy must not carry it off the machine.
    if host not in ("127.0.0.1", "::1", "localhost"):
        await client.aclose()
        raise AssertionError(f"the test proxy was asked to connect to {host}")
    upstream = await trio.open_tcp_stream(host, port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_pipe, client, upstream)
        nursery.start_soon(_pipe, upstream, client)


async def _read_head(stream: trio.SocketStream) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise EOFError
        data += chunk
    return data.decode("latin-1")


def http_proxy(
    log: ProxyLog, *, password: str | None = None, status: int = 200
) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """An HTTP CONNECT proxy; with ``password``, demands Basic user:password (407 first)."""

    async def handle(stream: trio.SocketStream) -> None:
        try:
            head = await _read_head(stream)
        except EOFError:
            return
        log.requests.append(head)
        target = head.split(" ")[1]
        host, _, port = target.rpartition(":")
        if password is not None:
            expected = "Basic " + base64.b64encode(f"user:{password}".encode()).decode()
            if f"Proxy-Authorization: {expected}" not in head:
                await stream.send_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n'
                )
                await stream.aclose()
                return
        if status != 200:
            await stream.send_all(
                f"HTTP/1.1 {status} Nope\r\nContent-Length: 4\r\n\r\nnope".encode()
            )
            await stream.aclose()
            return
        log.targets.append((host, int(port)))
        await stream.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await _relay(stream, host, int(port))

    return handle


def socks5_proxy(
    log: ProxyLog, *, password: str | None = None, reply: int = 0
) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """A SOCKS5 proxy (RFC 1928), with RFC 1929 user/password when ``password`` is set."""

    async def handle(stream: trio.SocketStream) -> None:
        buffer = bytearray()

        async def take(n: int) -> bytes:
            while len(buffer) < n:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    raise EOFError
                buffer.extend(chunk)
            result = bytes(buffer[:n])
            del buffer[:n]
            return result

        try:
            _version, count = await take(2)
            methods = await take(count)
            if password is not None:
                if 2 not in methods:
                    await stream.send_all(b"\x05\xff")
                    return
                await stream.send_all(b"\x05\x02")
                _, ulen = await take(2)
                user = await take(ulen)
                (plen,) = await take(1)
                given = await take(plen)
                ok = user == b"user" and given == password.encode()
                await stream.send_all(b"\x01\x00" if ok else b"\x01\x01")
                if not ok:
                    return
            else:
                await stream.send_all(b"\x05\x00")
            _v, _cmd, _rsv, kind = await take(4)
            if kind == 1:
                host = ".".join(str(b) for b in await take(4))
            elif kind == 3:
                (length,) = await take(1)
                host = (await take(length)).decode()
                log.requests.append(f"name:{host}")
                host = "127.0.0.1" if host == "localhost" else host
            else:
                raise AssertionError(kind)
            (port,) = struct.unpack("!H", await take(2))
            if reply:
                await stream.send_all(bytes([5, reply, 0, 1, 0, 0, 0, 0, 0, 0]))
                return
            log.targets.append((host, port))
            await stream.send_all(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
            await _relay(stream, host, port)
        except EOFError:
            return

    return handle


async def start_proxy(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> int:
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def test_http_connect_proxy_tunnels_to_the_server(
    nursery: trio.Nursery, echo_url: str
) -> None:
    log = ProxyLog()
    port = await start_proxy(nursery, http_proxy(log))
    async with trio_mws.open_message_websocket(echo_url, proxy=f"http://127.0.0.1:{port}") as ws:
        await ws.send("through the proxy")
        assert (await ws.receive()).text == "through the proxy"
    assert log.targets == [("127.0.0.1", parse_uri(echo_url).port)]
    assert log.requests[0].startswith(f"CONNECT 127.0.0.1:{parse_uri(echo_url).port} HTTP/1.1")


async def test_http_proxy_basic_credentials_on_407(nursery: trio.Nursery, echo_url: str) -> None:
    log = ProxyLog()
    port = await start_proxy(nursery, http_proxy(log, password="s3cret"))
    async with trio_mws.open_message_websocket(
        echo_url,
        proxy=f"http://127.0.0.1:{port}",
        proxy_credential=trio_mws.PasswordCredential("user", "s3cret"),
    ) as ws:
        await ws.send("ok")
        assert (await ws.receive()).text == "ok"
    assert len(log.requests) == 2  # first without credentials, then with them
    assert "Proxy-Authorization" not in log.requests[0]


async def test_http_proxy_407_without_credentials(nursery: trio.Nursery, echo_url: str) -> None:
    port = await start_proxy(nursery, http_proxy(ProxyLog(), password="s3cret"))
    with pytest.raises(trio_mws.HandshakeError) as info:
        async with trio_mws.open_message_websocket(echo_url, proxy=f"http://127.0.0.1:{port}"):
            pass
    assert info.value.status is trio_mws.WebErrorStatus.PROXY_AUTHENTICATION_REQUIRED
    assert info.value.status_code == 407


async def test_http_proxy_refusal_is_classified(nursery: trio.Nursery, echo_url: str) -> None:
    port = await start_proxy(nursery, http_proxy(ProxyLog(), status=502))
    with pytest.raises(trio_mws.HandshakeError) as info:
        async with trio_mws.open_message_websocket(echo_url, proxy=f"http://127.0.0.1:{port}"):
            pass
    assert info.value.status is trio_mws.WebErrorStatus.BAD_GATEWAY
    assert info.value.body == b"nope"


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_socks5_proxy(nursery: trio.Nursery, echo_url: str, scheme: str) -> None:
    log = ProxyLog()
    port = await start_proxy(nursery, socks5_proxy(log, password="pw"))
    url = echo_url.replace("127.0.0.1", "localhost")
    async with trio_mws.open_message_websocket(
        url,
        proxy=f"{scheme}://user:pw@127.0.0.1:{port}",
    ) as ws:
        await ws.send(b"socks")
        assert (await ws.receive()).data == b"socks"
    if scheme == "socks5h":
        assert log.requests == ["name:localhost"]  # the proxy resolved the name
    else:
        assert log.requests == []  # we resolved it and sent an address


async def test_socks5_failure_reply_is_classified(nursery: trio.Nursery, echo_url: str) -> None:
    port = await start_proxy(nursery, socks5_proxy(ProxyLog(), reply=5))
    with pytest.raises(trio_mws.ConnectError) as info:
        async with trio_mws.open_message_websocket(echo_url, proxy=f"socks5://127.0.0.1:{port}"):
            pass
    assert info.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT
    assert "connection refused" in str(info.value)


async def test_socks5_bad_credentials(nursery: trio.Nursery, echo_url: str) -> None:
    port = await start_proxy(nursery, socks5_proxy(ProxyLog(), password="pw"))
    with pytest.raises(trio_mws.HandshakeError) as info:
        async with trio_mws.open_message_websocket(
            echo_url, proxy=f"socks5://user:wrong@127.0.0.1:{port}"
        ):
            pass
    assert info.value.status is trio_mws.WebErrorStatus.PROXY_AUTHENTICATION_REQUIRED


async def test_unreachable_proxy_is_cannot_connect(echo_url: str) -> None:
    with pytest.raises(trio_mws.ConnectError) as info:
        async with trio_mws.open_message_websocket(echo_url, proxy="http://127.0.0.1:1"):
            pass
    assert info.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT


def test_auto_proxy_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    control = MessageWebSocketControl()
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("https_proxy", "socks5h://u:p@socks.example")
    monkeypatch.setenv("no_proxy", "internal.example,.corp.example")
    plain = choose_proxy(parse_uri("ws://service.example/"), control)
    assert plain is not None and (plain.scheme, plain.host, plain.port) == (
        "http",
        "proxy.example",
        3128,
    )
    secure = choose_proxy(parse_uri("wss://service.example/"), control)
    assert secure is not None and (secure.scheme, secure.port) == ("socks5h", 1080)
    assert secure.credential == trio_mws.PasswordCredential("u", "p")
    assert choose_proxy(parse_uri("ws://internal.example/"), control) is None
    assert choose_proxy(parse_uri("ws://a.corp.example/"), control) is None
    assert choose_proxy(parse_uri("ws://127.0.0.1:9/"), control) is None  # loopback: direct
    assert choose_proxy(parse_uri("ws://localhost:9/"), control) is None
    assert (
        choose_proxy(parse_uri("ws://service.example/"), MessageWebSocketControl(proxy=None))
        is None
    )


def test_proxy_field_validation() -> None:
    with pytest.raises(ValueError):
        MessageWebSocketControl(proxy="ftp://x")
    with pytest.raises(TypeError):
        MessageWebSocketControl(proxy=3)
