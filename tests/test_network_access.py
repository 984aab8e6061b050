"""Network access classes: every range API.md section 8 names, judged exactly."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trio_mws
from trio_mws import transport
from trio_mws.network_access import ALL_NETWORKS, NetworkAccess, address_class, check_address

from .mws_helpers import StartServer
from .rawserver import RawPeer
from .test_proxy import ProxyLog, http_proxy, socks5_proxy, start_proxy

LOOPBACK, PRIVATE, INTERNET = NetworkAccess.LOOPBACK, NetworkAccess.PRIVATE, NetworkAccess.INTERNET

CASES = [
    ("127.0.0.1", LOOPBACK),
    ("127.255.255.254", LOOPBACK),
    ("::1", LOOPBACK),
    ("::ffff:127.0.0.1", LOOPBACK),
    ("10.0.0.1", PRIVATE),
    ("10.255.255.255", PRIVATE),
    ("172.16.0.1", PRIVATE),
    ("172.31.255.255", PRIVATE),
    ("172.32.0.1", INTERNET),
    ("172.15.255.255", INTERNET),
    ("192.168.1.1", PRIVATE),
    ("100.64.0.1", PRIVATE),
    ("100.127.255.255", PRIVATE),
    ("100.128.0.0", INTERNET),
    ("169.254.169.254", PRIVATE),  # cloud metadata
    ("fd00:ec2::254", PRIVATE),  # AWS's IPv6 metadata address (unique local)
    ("fc00::1", PRIVATE),
    ("fe80::1", PRIVATE),
    ("fe80::1%2", PRIVATE),
    ("::ffff:10.1.2.3", PRIVATE),
    ("::ffff:169.254.169.254", PRIVATE),
    ("64:ff9b::a9fe:a9fe", PRIVATE),  # NAT64 for 169.254.169.254
    ("2002:c0a8:0101::1", PRIVATE),  # 6to4 for 192.168.1.1
    ("8.8.8.8", INTERNET),
    ("93.184.216.34", INTERNET),
    ("2606:4700:4700::1111", INTERNET),
    ("::ffff:8.8.8.8", INTERNET),
    ("0.0.0.0", None),
    ("0.1.2.3", None),
    ("::", None),
    ("224.0.0.1", None),
    ("239.255.255.250", None),
    ("255.255.255.255", None),
    ("240.0.0.1", None),
    ("192.0.2.1", None),
    ("198.51.100.7", None),
    ("203.0.113.9", None),
    ("198.18.0.1", None),
    ("ff02::1", None),
    ("2001:db8::1", None),
    ("2001::1", None),  # Teredo
    ("fec0::1", None),
    ("::1.2.3.4", None),  # deprecated IPv4-compatible
    ("4000::1", None),  # outside 2000::/3
]


@pytest.mark.parametrize(("address", "expected"), CASES)
def test_address_classes(address: str, expected: NetworkAccess | None) -> None:
    assert address_class(address) == expected


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_and_nat64_addresses_are_judged_as_their_ipv4(
    ip: ipaddress.IPv4Address,
) -> None:
    expected = address_class(ip)
    assert address_class(f"::ffff:{ip}") == expected
    assert (
        address_class(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip)))
        == expected
    )


@given(st.ip_addresses())
def test_every_address_has_one_verdict_and_check_agrees(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    found = address_class(ip)
    for allowed in (LOOPBACK, PRIVATE, INTERNET, LOOPBACK | PRIVATE, ALL_NETWORKS):
        if found is not None and found & allowed:
            check_address(ip, allowed)
        else:
            with pytest.raises(trio_mws.ConnectError) as caught:
                check_address(ip, allowed)
            assert caught.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT
            assert str(ip) in str(caught.value)


def test_the_refusal_names_the_address_and_the_missing_access() -> None:
    with pytest.raises(trio_mws.ConnectError) as caught:
        check_address("169.254.169.254", INTERNET)
    message = str(caught.value)
    assert "169.254.169.254" in message
    assert "PRIVATE" in message
    assert "INTERNET" in message


def test_not_an_address_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        address_class("example.org")


# -- the check on real connections -------------------------------------------------------------


class StubResolver(trio.abc.HostnameResolver):
    """Answers for made-up names (anything else goes to the system's resolver), and counts
    the questions: a connection must be made to the address that was checked, without a
    second resolution that DNS rebinding could answer differently."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def getaddrinfo(  # type: ignore[override]
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "no such name (stub resolver)")
        result = []
        for address in self.answers[name]:
            family_ = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr: tuple[Any, ...] = (
                (address, int(port or 0), 0, 0)
                if family_ == socket.AF_INET6
                else (address, int(port or 0))
            )
            result.append((family_, socket.SOCK_STREAM, 6, "", sockaddr))
        return result

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        raise NotImplementedError  # pragma: no cover - never asked


@pytest.fixture(autouse=True)
def only_loopback_is_dialled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A safety net, not a mock: the stub resolver's answers name private and internet
    addresses, and a client that failed to refuse them must not send a packet off this
    machine. Every connection attempt is checked to be loopback before it is made."""
    real = transport._connect_first

    async def guarded(targets: list[transport.Target]) -> trio.SocketStream:
        for _family, sockaddr in targets:
            assert ipaddress.ip_address(sockaddr[0]).is_loopback, f"tried to dial {sockaddr}"
        return await real(targets)

    monkeypatch.setattr(transport, "_connect_first", guarded)


@pytest.fixture
async def resolver() -> AsyncIterator[StubResolver]:
    stub = StubResolver({})
    previous = trio.socket.set_custom_hostname_resolver(stub)
    yield stub
    trio.socket.set_custom_hostname_resolver(previous)


async def _count_connections(
    nursery: trio.Nursery,
) -> tuple[str, list[trio.SocketStream]]:
    """A TCP server on 127.0.0.1 that accepts and upgrades nothing: it counts connections."""
    accepted: list[trio.SocketStream] = []

    async def handle(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"ws://127.0.0.1:{port}/", accepted


async def test_loopback_refused_before_any_packet(nursery: trio.Nursery) -> None:
    url, accepted = await _count_connections(nursery)
    with pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(url, network_access=INTERNET):
            pass  # pragma: no cover - refused
    assert caught.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT
    assert "127.0.0.1" in str(caught.value) and "LOOPBACK" in str(caught.value)
    await trio.testing.wait_all_tasks_blocked()
    assert accepted == []  # the server never saw a connection


async def test_allowed_class_connects(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url, network_access=LOOPBACK) as ws:
        await ws.send("in")
        assert (await ws.receive()).text == "in"


async def test_a_name_resolving_to_cloud_metadata_is_refused(resolver: StubResolver) -> None:
    resolver.answers["metadata.test"] = ["169.254.169.254"]
    with trio.fail_after(5), pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(
            "ws://metadata.test/latest", network_access=INTERNET | LOOPBACK
        ):
            pass  # pragma: no cover - refused
    assert "169.254.169.254" in str(caught.value) and "PRIVATE" in str(caught.value)
    assert caught.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT


async def test_only_checked_answers_are_tried_and_the_name_is_resolved_once(
    resolver: StubResolver, echo_url: str
) -> None:
    port = urlsplit(echo_url).port
    # A refused answer first: it must be skipped, never attempted.
    resolver.answers["mixed.test"] = ["10.1.2.3", "127.0.0.1"]
    async with trio_mws.open_message_websocket(
        f"ws://mixed.test:{port}/", network_access=LOOPBACK
    ) as ws:
        assert ws.information.remote_address == ("127.0.0.1", port)
        await ws.send("checked")
        assert (await ws.receive()).text == "checked"
    assert resolver.asked == ["mixed.test"]


async def test_every_redirect_hop_is_checked(
    resolver: StubResolver, raw_server: StartServer
) -> None:
    resolver.answers["internal.test"] = ["192.168.7.7"]

    async def redirect(peer: RawPeer) -> None:
        await peer.read_request()
        await peer.send(
            b"HTTP/1.1 302 Found\r\nLocation: ws://internal.test/admin\r\nContent-Length: 0\r\n\r\n"
        )

    url = await raw_server(redirect)
    with trio.fail_after(5), pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(url, network_access=LOOPBACK | INTERNET):
            pass  # pragma: no cover - refused
    assert "192.168.7.7" in str(caught.value)
    assert caught.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT


async def test_the_proxy_itself_is_checked(nursery: trio.Nursery) -> None:
    log = ProxyLog()
    port = await start_proxy(nursery, http_proxy(log))
    with pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(
            "ws://93.184.216.34/", proxy=f"http://127.0.0.1:{port}", network_access=INTERNET
        ):
            pass  # pragma: no cover - refused
    assert "127.0.0.1" in str(caught.value)
    assert log.requests == []


async def test_a_proxy_that_resolves_names_is_refused_unless_trusted(
    nursery: trio.Nursery, echo_url: str
) -> None:
    log = ProxyLog()
    port = await start_proxy(nursery, http_proxy(log))
    named = echo_url.replace("127.0.0.1", "localhost")
    with pytest.raises(ValueError, match="proxy_resolves_names_trusted"):
        async with trio_mws.open_message_websocket(
            named, proxy=f"http://127.0.0.1:{port}", network_access=LOOPBACK
        ):
            pass  # pragma: no cover - refused
    assert log.requests == []
    # An IP address can be checked, so it goes through; so does a trusted proxy.
    for url, trusted in ((echo_url, False), (named, True)):
        async with trio_mws.open_message_websocket(
            url,
            proxy=f"http://127.0.0.1:{port}",
            network_access=LOOPBACK,
            proxy_resolves_names_trusted=trusted,
        ) as ws:
            await ws.send("via proxy")
            assert (await ws.receive()).text == "via proxy"
    assert len(log.targets) == 2


async def test_socks5_checks_what_it_resolved(
    nursery: trio.Nursery, resolver: StubResolver
) -> None:
    resolver.answers["private.test"] = ["10.9.9.9"]
    log = ProxyLog()
    port = await start_proxy(nursery, socks5_proxy(log))
    with trio.fail_after(5), pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(
            "ws://private.test/", proxy=f"socks5://127.0.0.1:{port}", network_access=LOOPBACK
        ):
            pass  # pragma: no cover - refused
    assert "10.9.9.9" in str(caught.value)
    assert log.targets == []  # the proxy was never asked to connect


def test_network_access_field_validation() -> None:
    control = trio_mws.MessageWebSocketControl()
    assert control.network_access == LOOPBACK | PRIVATE | INTERNET
    with pytest.raises(TypeError):
        control.network_access = 7  # type: ignore[assignment]
    with pytest.raises(ValueError):
        control.network_access = NetworkAccess(0)
    with pytest.raises(TypeError):
        control.proxy_resolves_names_trusted = 1  # type: ignore[assignment]


async def test_forbidden_addresses_are_never_dialled_even_with_the_default_access(
    nursery: trio.Nursery,
) -> None:
    # 0.0.0.0 reaches the local machine on Linux: "never allowed" must hold by default too.
    url, accepted = await _count_connections(nursery)
    port = urlsplit(url).port
    with pytest.raises(trio_mws.NetworkAccessDenied) as caught:
        async with trio_mws.open_message_websocket(f"ws://0.0.0.0:{port}/"):
            pass  # pragma: no cover - refused
    assert caught.value.status is trio_mws.WebErrorStatus.CANNOT_CONNECT
    assert "0.0.0.0" in str(caught.value)
    await trio.testing.wait_all_tasks_blocked()
    assert accepted == []


async def test_a_refused_address_is_not_retried(nursery: trio.Nursery) -> None:
    url, accepted = await _count_connections(nursery)
    calls = 0

    async def handler(ws: trio_mws.MessageWebSocket) -> None:
        nonlocal calls
        calls += 1  # pragma: no cover - never connects

    with trio.fail_after(5), pytest.raises(trio_mws.NetworkAccessDenied):
        await trio_mws.run_reconnecting(url, handler, network_access=INTERNET)
    assert calls == 0 and accepted == []


_NO_DESCRIPTORS_LEFT = """
import os, resource, socket, trio, trio_mws

class Two(trio.abc.HostnameResolver):
    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port))),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", int(port)))]
    async def getnameinfo(self, sockaddr, flags):
        raise OSError

async def main():
    trio.socket.set_custom_hostname_resolver(Two())
    "two.test".encode("idna")  # load the codec now: no file can be opened later
    hog = []
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        async with trio_mws.open_message_websocket("ws://two.test:9/"):
            pass
    except trio_mws.ConnectError as exc:
        print("ConnectError", exc.status.name, repr(exc.__cause__))
    finally:
        for fd in hog:
            os.close(fd)

resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
trio.run(main)
"""


def test_a_socket_that_cannot_be_made_is_a_connect_error_not_a_group() -> None:
    # Every descriptor in use: each happy-eyeballs attempt fails to create its socket.
    result = subprocess.run(
        [sys.executable, "-c", _NO_DESCRIPTORS_LEFT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ConnectError"), result.stdout + result.stderr[-2000:]
    assert "Too many open files" in result.stdout  # the sockets could not be made
