"""``information.timings`` and ``ConnectError.timings``: where connect time went."""

from __future__ import annotations

import pytest
import trio

import trio_mws

from .mws_helpers import StartServer
from .opening_helpers import refused_url
from .rawserver import RawPeer
from .test_proxy import ProxyLog, http_proxy, start_proxy


def _stages(timings: trio_mws.ConnectTimings) -> dict[str, float | None]:
    return {name: getattr(timings, name) for name in ("dns", "tcp", "proxy", "tls", "handshake")}


async def test_a_direct_ws_connect_fills_tcp_and_handshake(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        timings = ws.information.timings
    assert timings is not None
    stages = _stages(timings)
    assert stages["dns"] is None  # an IP address: nothing to resolve
    assert stages["proxy"] is None and stages["tls"] is None
    assert stages["tcp"] is not None and stages["tcp"] >= 0
    assert stages["handshake"] is not None and stages["handshake"] >= 0
    assert timings.total >= stages["tcp"] + stages["handshake"]


async def test_a_name_and_a_proxy_add_their_stages(nursery: trio.Nursery, echo_url: str) -> None:
    port = await start_proxy(nursery, http_proxy(ProxyLog()))
    named = echo_url.replace("127.0.0.1", "localhost")
    async with trio_mws.open_message_websocket(named, proxy=f"http://localhost:{port}") as ws:
        timings = ws.information.timings
    assert timings is not None
    assert timings.dns is not None  # the proxy's name was resolved
    assert timings.proxy is not None  # CONNECT was negotiated
    assert timings.tls is None


async def test_a_failed_connect_carries_its_timings_as_far_as_it_got() -> None:
    with refused_url() as url, pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(url):
            pass  # pragma: no cover - refused
    timings = caught.value.timings
    assert timings is not None
    assert timings.tcp is not None  # it tried
    assert timings.handshake is None  # and never got there


async def test_a_timeout_in_the_handshake_shows_where_the_time_went(
    autojump_clock: trio.testing.MockClock, raw_server: StartServer
) -> None:
    async def silent(peer: RawPeer) -> None:
        await peer.read_request()
        await trio.sleep_forever()

    url = await raw_server(silent)
    with pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(url, connect_timeout=30):
            pass  # pragma: no cover - times out
    assert caught.value.status is trio_mws.WebErrorStatus.TIMEOUT
    timings = caught.value.timings
    assert timings is not None
    assert timings.handshake == pytest.approx(30, abs=0.5)
    assert timings.total == pytest.approx(30, abs=0.5)
