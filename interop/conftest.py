"""Fixtures of the interop suite: real peers started once per session on 127.0.0.1.

Every peer is a subprocess (see ``peers.py``) with its config in a temporary directory,
stopped at the end of the session. A peer that is missing or does not start FAILS the
tests that need it (never a skip): the suite exists to show that trio_mws works with
these programs, so a run without them must not look green.

``route`` is the path from the client to Node's ``ws`` server that a feature test runs
over; every test carries an ``interop(feature, peer)`` marker (the peer defaults to the
route), and the end of the run prints the peer x feature matrix.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import trustme

from . import peers

T = TypeVar("T")

ROUTES = ("ws", "nginx-tls", "tinyproxy", "dante-socks5", "dante-socks5h", "pproxy")
"""Paths to the ``ws`` server, as ``route`` parameter ids (the matrix's peer names)."""


@dataclass(frozen=True)
class Route:
    """How to reach the ``ws`` server's ``path``: the URL and the control fields to use."""

    name: str
    """The route's name, one of :data:`ROUTES`."""
    base: str
    """``ws://host:port`` or ``wss://host:port`` of the server as the client names it."""
    via_port: int
    """The port on 127.0.0.1 that the TCP connection goes to: the first hop (proxy or server)."""
    control: dict[str, Any] = field(default_factory=dict)
    """Control fields (``proxy``, ``ssl_context``, ...) for ``open_message_websocket``."""

    def url(self, path: str) -> str:
        """The URL of ``path`` (which starts with ``/``) on this route."""
        return self.base + path


def _started(start: Callable[[], T]) -> T:
    try:
        return start()
    except peers.PeerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The test certificate authority (trusted only through :func:`client_context`)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts :func:`ca` only (verification on)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def ws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[peers.Peer]:
    """Node's ``ws`` server (permessage-deflate on), plain ws:// on 127.0.0.1."""
    peer = _started(lambda: peers.start_ws_server(tmp_path_factory.mktemp("ws")))
    yield peer
    peer.stop()


@dataclass(frozen=True)
class Nginx:
    """The nginx peer and the port of its server block with the expired certificate."""

    peer: peers.Peer
    """nginx itself; ``peer.port`` serves the valid ``localhost`` certificate."""
    expired_port: int
    """A server block whose certificate expired yesterday."""


@pytest.fixture(scope="session")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA, ws_server: peers.Peer
) -> Iterator[Nginx]:
    """nginx terminating TLS (certificate for ``localhost``) in front of :func:`ws_server`."""
    workdir = tmp_path_factory.mktemp("nginx")
    cert = workdir / "localhost.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(cert))
    now = datetime.datetime.now(datetime.UTC)
    expired = workdir / "expired.pem"
    ca.issue_cert(
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    ).private_key_and_cert_chain_pem.write_to_path(str(expired))
    peer, expired_port = _started(
        lambda: peers.start_nginx(
            workdir, backend_port=ws_server.port, cert_pem=cert, expired_pem=expired
        )
    )
    yield Nginx(peer, expired_port)
    peer.stop()


@pytest.fixture(scope="session")
def tinyproxy(
    tmp_path_factory: pytest.TempPathFactory, ws_server: peers.Peer, nginx: Nginx
) -> Iterator[peers.Peer]:
    """tinyproxy (HTTP CONNECT, Basic auth) allowing the ws server's and nginx's ports only."""
    workdir = tmp_path_factory.mktemp("tinyproxy")
    allowed = [ws_server.port, nginx.peer.port]
    peer = _started(lambda: peers.start_tinyproxy(workdir, allowed_ports=allowed))
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def blocked_port() -> int:
    """A loopback port that dante's rules refuse to connect to."""
    return peers.closed_port()


@pytest.fixture(scope="session")
def dante(tmp_path_factory: pytest.TempPathFactory, blocked_port: int) -> Iterator[peers.Peer]:
    """dante: SOCKS5 without authentication, to loopback only, refusing :func:`blocked_port`."""
    workdir = tmp_path_factory.mktemp("dante")
    peer = _started(lambda: peers.start_dante(workdir, blocked_port=blocked_port))
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def pproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[peers.Peer]:
    """pproxy: SOCKS5 demanding username/password."""
    peer = _started(lambda: peers.start_pproxy(tmp_path_factory.mktemp("pproxy")))
    yield peer
    peer.stop()


def _proxy_url(scheme: str, peer: peers.Peer, *, credentials: bool = False) -> str:
    userinfo = f"{peers.USER}:{peers.PASSWORD}@" if credentials else ""
    return f"{scheme}://{userinfo}127.0.0.1:{peer.port}"


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest, ws_server: peers.Peer) -> Route:
    """Each way to the ``ws`` server: direct, behind nginx (TLS), through each proxy.

    Through tinyproxy and dante's socks5h the target is nginx's ``wss://localhost``, so
    TLS runs inside the tunnel; through dante's socks5 and pproxy it is plain ``ws://``.
    """
    name: str = request.param
    direct = f"ws://127.0.0.1:{ws_server.port}"
    if name == "ws":
        return Route(name, direct, ws_server.port, {"proxy": None})
    nginx: Nginx = request.getfixturevalue("nginx")
    context = request.getfixturevalue("client_context")
    tls = f"wss://localhost:{nginx.peer.port}"
    if name == "nginx-tls":
        return Route(name, tls, nginx.peer.port, {"proxy": None, "ssl_context": context})
    proxy: peers.Peer
    if name == "tinyproxy":
        proxy = request.getfixturevalue("tinyproxy")
        url = _proxy_url("http", proxy, credentials=True)
        return Route(name, tls, proxy.port, {"proxy": url, "ssl_context": context})
    if name == "dante-socks5":
        proxy = request.getfixturevalue("dante")
        return Route(name, direct, proxy.port, {"proxy": _proxy_url("socks5", proxy)})
    if name == "dante-socks5h":
        proxy = request.getfixturevalue("dante")
        url = _proxy_url("socks5h", proxy)
        return Route(name, tls, proxy.port, {"proxy": url, "ssl_context": context})
    assert name == "pproxy"
    proxy = request.getfixturevalue("pproxy")
    url = _proxy_url("socks5", proxy, credentials=True)
    return Route(name, direct, proxy.port, {"proxy": url})


# --- the peer x feature matrix ---------------------------------------------------------

_RESULTS: dict[tuple[str, str], str] = {}
"""(peer, feature) -> "pass" / "FAIL", filled as tests run."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``interop`` marker."""
    config.addinivalue_line(
        "markers", "interop(feature, peer=None): the matrix cell a test fills (peer: route)"
    )


def _cell(item: pytest.Item) -> tuple[str, str] | None:
    marker = item.get_closest_marker("interop")
    if marker is None:
        return None
    feature: str = marker.args[0]
    peer: str | None = marker.kwargs.get("peer")
    if peer is None:
        peer = str(item.callspec.params["route"]) if hasattr(item, "callspec") else "?"
    return peer, feature


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Record each test's outcome in its matrix cell (a cell fails if any of its tests fail)."""
    report = yield
    cell = _cell(item)
    if cell is not None and (report.when == "call" or report.failed):
        if report.failed or _RESULTS.get(cell) == "FAIL":
            _RESULTS[cell] = "FAIL"
        elif report.when == "call":
            _RESULTS[cell] = "pass"
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the matrix, peers as columns, features as rows, as Markdown."""
    if not _RESULTS:
        return
    peer_names = [p for p in ROUTES if any(c[0] == p for c in _RESULTS)]
    peer_names += sorted({c[0] for c in _RESULTS} - set(peer_names))
    features = list(dict.fromkeys(feature for _, feature in _RESULTS))
    write = terminalreporter.write_line
    write("")
    write("interop matrix (peer x feature; '-' = not applicable):")
    write("| feature | " + " | ".join(peer_names) + " |")
    write("| --- |" + " --- |" * len(peer_names))
    for feature in features:
        cells = [_RESULTS.get((peer, feature), "-") for peer in peer_names]
        write(f"| {feature} | " + " | ".join(cells) + " |")
