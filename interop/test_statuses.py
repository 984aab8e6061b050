"""What a user sees when a real server or proxy refuses: HTTP statuses, authentication,
redirects, certificates and proxy failures, each classified as a ``WebErrorStatus``."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trio

import trio_mws
from trio_mws import ChainValidationResult, PasswordCredential, SocketSslErrorSeverity
from trio_mws import WebErrorStatus as Status

from . import peers
from .conftest import Nginx

TIMEOUT = 60.0
"""Seconds any one test may take."""
GOOD = PasswordCredential(peers.USER, peers.PASSWORD)
"""The credential every password-protected peer accepts."""
BAD = PasswordCredential(peers.USER, "wrong-password")
"""A credential every password-protected peer refuses."""


async def _echo_once(url: str, **control: Any) -> trio_mws.MessageWebSocket:
    """Connect, echo one message, close; return the socket for its information."""
    async with trio_mws.open_message_websocket(url, **control) as ws:
        await ws.send("ping?")
        assert (await ws.receive()).text == "ping?"
    return ws


async def _connect_error(url: str, **control: Any) -> trio_mws.ConnectError:
    """The ConnectError that connecting to ``url`` raises (fails the test if it connects)."""
    with pytest.raises(trio_mws.ConnectError) as caught:
        async with trio_mws.open_message_websocket(url, **control):
            pass
    return caught.value


# --- Node's ws: a server that answers the upgrade with a status -----------------------


@pytest.mark.interop("403 status", peer="ws")
async def test_ws_server_refusing_the_upgrade_with_403(ws_server: peers.Peer) -> None:
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(f"ws://127.0.0.1:{ws_server.port}/status/403", proxy=None)
    assert isinstance(error, trio_mws.HandshakeError)
    assert (error.status, error.status_code, error.body) == (Status.FORBIDDEN, 403, b"status 403\n")


# --- nginx: TLS, Basic auth, redirects, 403, 502 --------------------------------------


def _nginx_url(nginx: Nginx, path: str) -> str:
    return f"wss://localhost:{nginx.peer.port}{path}"


@pytest.mark.interop("401 Basic auth", peer="nginx-tls")
async def test_nginx_basic_auth(nginx: Nginx, client_context: ssl.SSLContext) -> None:
    url = _nginx_url(nginx, "/private/echo")
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=None, ssl_context=client_context)
        assert isinstance(error, trio_mws.HandshakeError)
        assert (error.status, error.status_code) == (Status.UNAUTHORIZED, 401)
        assert ("WWW-Authenticate", 'Basic realm="interop"') in error.headers

        error = await _connect_error(
            url, proxy=None, ssl_context=client_context, server_credential=BAD
        )
        assert error.status == Status.UNAUTHORIZED

        await _echo_once(url, proxy=None, ssl_context=client_context, server_credential=GOOD)
        userinfo = f"wss://{peers.USER}:{peers.PASSWORD}@localhost:{nginx.peer.port}/private/echo"
        await _echo_once(userinfo, proxy=None, ssl_context=client_context)


@pytest.mark.interop("redirects", peer="nginx-tls")
@pytest.mark.parametrize("path", ["/moved", "/found", "/temporary", "/permanent"])
async def test_nginx_redirects_are_followed(
    nginx: Nginx, client_context: ssl.SSLContext, path: str
) -> None:
    with trio.fail_after(TIMEOUT):
        ws = await _echo_once(_nginx_url(nginx, path), proxy=None, ssl_context=client_context)
    response = ws.information.handshake_response
    assert response is not None and response.status_code == 101


@pytest.mark.interop("redirects", peer="nginx-tls")
async def test_nginx_redirect_failures(nginx: Nginx, client_context: ssl.SSLContext) -> None:
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(
            _nginx_url(nginx, "/to-ws"), proxy=None, ssl_context=client_context
        )
        assert error.status == Status.HTTPS_TO_HTTP_ON_REDIRECTION
        error = await _connect_error(
            _nginx_url(nginx, "/loop"), proxy=None, ssl_context=client_context, max_redirects=3
        )
        assert error.status == Status.REDIRECT_FAILED


@pytest.mark.interop("403 status", peer="nginx-tls")
async def test_nginx_403(nginx: Nginx, client_context: ssl.SSLContext) -> None:
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(
            _nginx_url(nginx, "/forbidden"), proxy=None, ssl_context=client_context
        )
    assert isinstance(error, trio_mws.HandshakeError)
    assert (error.status, error.status_code) == (Status.FORBIDDEN, 403)


@pytest.mark.interop("502 status", peer="nginx-tls")
async def test_nginx_502_when_its_backend_is_down(
    nginx: Nginx, client_context: ssl.SSLContext
) -> None:
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(
            _nginx_url(nginx, "/down/echo"), proxy=None, ssl_context=client_context
        )
    assert isinstance(error, trio_mws.HandshakeError)
    assert (error.status, error.status_code) == (Status.BAD_GATEWAY, 502)
    assert b"502 Bad Gateway" in error.body


@pytest.mark.interop("certificate statuses", peer="nginx-tls")
async def test_nginx_certificate_for_another_host_name(
    nginx: Nginx, client_context: ssl.SSLContext
) -> None:
    # The certificate names "localhost" only; the client asks for 127.0.0.1.
    url = f"wss://127.0.0.1:{nginx.peer.port}/echo"
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=None, ssl_context=client_context)
    assert isinstance(error, trio_mws.CertificateError)
    assert error.status == Status.CERTIFICATE_COMMON_NAME_IS_INCORRECT
    assert ChainValidationResult.INVALID_NAME in error.errors


@pytest.mark.interop("certificate statuses", peer="nginx-tls")
async def test_nginx_certificate_from_an_untrusted_ca(nginx: Nginx) -> None:
    # Without ssl_context the system's trust store is used: it does not know the test CA.
    url = _nginx_url(nginx, "/echo")
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=None)
        assert isinstance(error, trio_mws.CertificateError)
        assert error.status == Status.CERTIFICATE_IS_INVALID
        assert ChainValidationResult.UNTRUSTED in error.errors

        ws = await _echo_once(
            url, proxy=None, ignorable_server_certificate_errors=[ChainValidationResult.UNTRUSTED]
        )
    assert ws.information.server_certificate_errors == (ChainValidationResult.UNTRUSTED,)
    assert ws.information.server_certificate_error_severity == SocketSslErrorSeverity.IGNORABLE


@pytest.mark.interop("certificate statuses", peer="nginx-tls")
async def test_nginx_expired_certificate(nginx: Nginx, client_context: ssl.SSLContext) -> None:
    url = f"wss://localhost:{nginx.expired_port}/echo"
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=None, ssl_context=client_context)
    assert isinstance(error, trio_mws.CertificateError)
    assert error.status == Status.CERTIFICATE_EXPIRED
    assert ChainValidationResult.EXPIRED in error.errors


@pytest.mark.interop("certificate statuses", peer="nginx-tls")
async def test_nginx_every_error_of_the_chain_is_reported(nginx: Nginx) -> None:
    # System trust (it does not know the test CA) against the expired certificate: two
    # errors. Without tolerated errors OpenSSL verifies and stops at its first; tolerating
    # that one makes the client validate the chain itself, which lists every error, and the
    # expired certificate still fails the connection.
    url = f"wss://localhost:{nginx.expired_port}/echo"
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=None)
        assert isinstance(error, trio_mws.CertificateError)
        assert ChainValidationResult.UNTRUSTED in error.errors
        tolerated = await _connect_error(
            url, proxy=None, ignorable_server_certificate_errors=[ChainValidationResult.UNTRUSTED]
        )
    assert isinstance(tolerated, trio_mws.CertificateError)
    assert tolerated.status == Status.CERTIFICATE_EXPIRED
    assert {ChainValidationResult.UNTRUSTED, ChainValidationResult.EXPIRED} <= set(tolerated.errors)


# --- tinyproxy: HTTP CONNECT with Basic auth ------------------------------------------


def _http_proxy(peer: peers.Peer) -> str:
    return f"http://127.0.0.1:{peer.port}"


@pytest.mark.interop("407 status", peer="tinyproxy")
async def test_tinyproxy_demands_proxy_credentials(
    tinyproxy: peers.Peer, ws_server: peers.Peer
) -> None:
    url = f"ws://127.0.0.1:{ws_server.port}/echo"
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=_http_proxy(tinyproxy))
        assert isinstance(error, trio_mws.HandshakeError)
        assert (error.status, error.status_code) == (Status.PROXY_AUTHENTICATION_REQUIRED, 407)

        # tinyproxy answers a wrong password with "401 Unauthorized" (and WWW-Authenticate),
        # not 407: by the contract (HTTP status N -> member N) that is UNAUTHORIZED, and the
        # message names the proxy.
        error = await _connect_error(url, proxy=_http_proxy(tinyproxy), proxy_credential=BAD)
        assert isinstance(error, trio_mws.HandshakeError)
        assert (error.status, error.status_code) == (Status.UNAUTHORIZED, 401)
        assert f"proxy 127.0.0.1:{tinyproxy.port}" in str(error)

        await _echo_once(url, proxy=_http_proxy(tinyproxy), proxy_credential=GOOD)


@pytest.mark.interop("403 status", peer="tinyproxy")
async def test_tinyproxy_refuses_a_port_it_does_not_allow(tinyproxy: peers.Peer) -> None:
    url = f"ws://127.0.0.1:{peers.closed_port()}/echo"
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=_http_proxy(tinyproxy), proxy_credential=GOOD)
    assert isinstance(error, trio_mws.HandshakeError)
    assert (error.status, error.status_code) == (Status.FORBIDDEN, 403)


# --- dante: SOCKS5 rules ----------------------------------------------------------------


@pytest.mark.interop("SOCKS refusal", peer="dante-socks5")
async def test_dante_refuses_a_target_its_rules_block(dante: peers.Peer, blocked_port: int) -> None:
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(
            f"ws://127.0.0.1:{blocked_port}/echo", proxy=f"socks5://127.0.0.1:{dante.port}"
        )
    # SOCKS5 reply 2, "connection not allowed by ruleset".
    assert error.status == Status.CANNOT_CONNECT
    assert "not allowed by ruleset" in str(error)


# --- pproxy: SOCKS5 with username/password ----------------------------------------------


def _socks(peer: peers.Peer) -> str:
    return f"socks5://127.0.0.1:{peer.port}"


@pytest.mark.interop("SOCKS auth refused", peer="pproxy")
@pytest.mark.parametrize("credential", [None, BAD], ids=["no-credential", "wrong-password"])
async def test_pproxy_closes_when_it_refuses_authentication(
    pproxy: peers.Peer, ws_server: peers.Peer, credential: PasswordCredential | None
) -> None:
    """pproxy does not answer when it refuses a client: it closes the connection.

    Without a credential we offer only "no authentication", and pproxy closes instead of
    answering method 0xFF; with a wrong password it closes instead of answering the RFC 1929
    sub-negotiation with a non-zero status.

    Decision: the user sees CONNECTION_ABORTED, at once, as a ConnectError that names the
    SOCKS proxy. A close at that point is most likely a refusal, but the client cannot know
    it: a proxy that crashed, restarted, or hit a connection limit while our request was in
    flight closes the same way. PROXY_AUTHENTICATION_REQUIRED is kept for proxies that say
    so (method 0xFF, or an RFC 1929 status != 0, as tested with tinyproxy's 407); reporting
    it on a bare close would send users looking for a password problem when the proxy died.
    (curl, too, reports "connection to proxy closed" there, and "User was rejected by the
    SOCKS5 server" only for a non-zero status.)
    """
    url = f"ws://127.0.0.1:{ws_server.port}/echo"
    with trio.fail_after(TIMEOUT):
        error = await _connect_error(url, proxy=_socks(pproxy), proxy_credential=credential)
    assert error.status == Status.CONNECTION_ABORTED
    assert "SOCKS proxy" in str(error)
