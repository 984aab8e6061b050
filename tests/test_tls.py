"""wss://: certificate validation, its policy knobs, custom validation and mutual TLS.

Certificates come from trustme (a throw-away CA); servers are trio-websocket over TLS or
scripted TLS servers (``serve_tls_raw``) on 127.0.0.1. The client trusts the CA only through
``control.ssl_context``; without it the CA is unknown (UNTRUSTED).
"""

from __future__ import annotations

import datetime
import functools
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trio.lowlevel
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from trio_websocket import WebSocketServer, serve_websocket

import trio_mws
from trio_mws import (
    CertificateError,
    CertificateRejected,
    ChainValidationResult,
    ConnectError,
    HandshakeError,
    ServerCustomValidationRequest,
    SocketSslErrorSeverity,
    WebErrorStatus,
    tls_contexts,
)
from trio_mws.testing import echo_handler

from .opening_helpers import (
    RawServer,
    accept_and_close,
    answer,
    echo_frames,
    finish_close,
    port_of,
    send_101,
    serve_tls_raw,
    state,
)
from .rawserver import Handler, RawPeer, serve_raw
from .test_proxy import ProxyLog, http_proxy

SERVER_CN = "trio-mws test server"
CLIENT_CN = "trio-mws test client"
_UTC = datetime.UTC


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    server: trustme.LeafCert  # for 127.0.0.1
    other_name: trustme.LeafCert  # for other.example only
    expired: trustme.LeafCert  # for 127.0.0.1, expired in 2001
    expired_other_name: trustme.LeafCert
    chained: trustme.LeafCert  # for 127.0.0.1, issued by an intermediate CA
    intermediate: trustme.CA
    client: trustme.LeafCert
    rogue: trustme.LeafCert  # for 127.0.0.1, from a CA nobody trusts
    rogue_expired: trustme.LeafCert  # the same, and expired in 2001


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = trustme.CA(organization_name="trio-mws tests")
    intermediate = ca.create_child_ca()
    rogue_ca = trustme.CA(organization_name="on-path attacker")
    past = {
        "not_before": datetime.datetime(2000, 1, 1, tzinfo=_UTC),
        "not_after": datetime.datetime(2001, 1, 1, tzinfo=_UTC),
    }
    return Pki(
        ca=ca,
        server=ca.issue_cert("127.0.0.1", common_name=SERVER_CN),
        other_name=ca.issue_cert("other.example"),
        expired=ca.issue_cert("127.0.0.1", **past),  # type: ignore[arg-type]
        expired_other_name=ca.issue_cert("other.example", **past),  # type: ignore[arg-type]
        chained=intermediate.issue_cert("127.0.0.1", common_name="chained"),
        intermediate=intermediate,
        client=ca.issue_cert("client@example.org", common_name=CLIENT_CN),
        rogue=rogue_ca.issue_cert("127.0.0.1", common_name="rogue"),
        rogue_expired=rogue_ca.issue_cert("127.0.0.1", **past),  # type: ignore[arg-type]
    )


def server_context(
    cert: trustme.LeafCert, *, require_client_ca: trustme.CA | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    if require_client_ca is not None:
        require_client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture(scope="session")
def trusting(pki: Pki) -> ssl.SSLContext:
    """A client context that trusts the test CA (and verifies as usual)."""
    context = ssl.create_default_context()
    pki.ca.configure_trust(context)
    return context


TlsServer = Callable[..., Awaitable[str]]


@pytest.fixture
def tls_server(nursery: trio.Nursery) -> TlsServer:
    """``url = await tls_server(handler, cert)``: a scripted TLS server (wss://127.0.0.1)."""

    async def start(
        handler: Handler, cert: trustme.LeafCert, require_client_ca: trustme.CA | None = None
    ) -> str:
        context = server_context(cert, require_client_ca=require_client_ca)
        url: str = await nursery.start(serve_tls_raw, handler, context)
        return url

    return start


def _der(cert: trustme.LeafCert | trustme.CA) -> bytes:
    pem = cert.cert_pem if isinstance(cert, trustme.CA) else cert.cert_chain_pems[0]
    return x509.load_pem_x509_certificate(pem.bytes()).public_bytes(Encoding.DER)


def _common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


class Counter:
    """Counts the upgrade requests a scripted server received."""

    def __init__(self) -> None:
        self.requests = 0

    async def accept(self, peer: RawPeer) -> None:
        await peer.read_request()
        self.requests += 1
        await send_101(peer)
        await finish_close(peer)


# -- success -----------------------------------------------------------------------------------


async def test_wss_to_trio_websocket_server(
    nursery: trio.Nursery, pki: Pki, trusting: ssl.SSLContext
) -> None:
    server = cast(
        WebSocketServer,
        await nursery.start(
            serve_websocket, echo_handler, "127.0.0.1", 0, server_context(pki.server)
        ),
    )
    url = f"wss://127.0.0.1:{server.port}/"
    async with trio_mws.open_message_websocket(url, ssl_context=trusting) as ws:
        await ws.send("over TLS")
        assert (await ws.receive()).text == "over TLS"
        info = ws.information
        assert isinstance(info.server_certificate, x509.Certificate)
        assert _common_name(info.server_certificate) == SERVER_CN
        assert info.server_certificate.public_bytes(Encoding.DER) == _der(pki.server)
        assert info.server_certificate_errors == ()
        assert info.server_certificate_error_severity is SocketSslErrorSeverity.NONE
        assert info.remote_address == ("127.0.0.1", server.port)
    assert ws.closed is not None and ws.closed.code == 1000


async def test_intermediate_certificates_are_reported(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    url = await tls_server(accept_and_close, pki.chained)
    async with trio_mws.open_message_websocket(url, ssl_context=trusting) as ws:
        info = ws.information
        assert info.server_certificate is not None
        assert _common_name(info.server_certificate) == "chained"
        # The chain the server sent is public from Python 3.13 (SSLObject.get_unverified_chain);
        # before, only the leaf can be read without private APIs.
        expected = [_der(pki.intermediate)] if sys.version_info >= (3, 13) else []
        assert [
            c.public_bytes(Encoding.DER) for c in info.server_intermediate_certificates
        ] == expected


async def test_plain_ws_has_no_certificate(echo_url: str) -> None:
    async with trio_mws.open_message_websocket(echo_url) as ws:
        assert ws.information.server_certificate is None
        assert ws.information.server_certificate_errors == ()


# -- default validation failures --------------------------------------------------------------


async def _certificate_error(url: str, **fields: Any) -> CertificateError:
    with pytest.raises(CertificateError) as info:
        async with trio_mws.open_message_websocket(url, **fields):
            pytest.fail("connected despite a bad certificate")
    return info.value


async def test_untrusted_ca(tls_server: TlsServer, pki: Pki) -> None:
    counter = Counter()
    url = await tls_server(counter.accept, pki.server)
    error = await _certificate_error(url)  # default context: the test CA is unknown
    assert type(error) is CertificateError
    assert error.status is WebErrorStatus.CERTIFICATE_IS_INVALID
    assert ChainValidationResult.UNTRUSTED in error.errors
    assert isinstance(error.__cause__, Exception)
    assert trio_mws.WebSocketError.get_status(error) is WebErrorStatus.CERTIFICATE_IS_INVALID
    assert counter.requests == 0  # nothing was sent over the unverified connection


async def test_host_name_mismatch(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    url = await tls_server(accept_and_close, pki.other_name)
    error = await _certificate_error(url, ssl_context=trusting)
    assert error.status is WebErrorStatus.CERTIFICATE_COMMON_NAME_IS_INCORRECT
    assert ChainValidationResult.INVALID_NAME in error.errors


async def test_expired_certificate(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    url = await tls_server(accept_and_close, pki.expired)
    error = await _certificate_error(url, ssl_context=trusting)
    assert error.status is WebErrorStatus.CERTIFICATE_EXPIRED
    assert ChainValidationResult.EXPIRED in error.errors


def _no_verification(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts nothing, checks nothing
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _no_hostname_check(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context()
    pki.ca.configure_trust(context)
    context.check_hostname = False
    return context


@pytest.mark.parametrize(
    ("make_context", "cert_name", "expected"),
    [
        (_no_verification, "server", ChainValidationResult.UNTRUSTED),
        (_no_hostname_check, "other_name", ChainValidationResult.INVALID_NAME),
    ],
    ids=["cert-none", "no-hostname-check"],
)
async def test_ssl_context_cannot_turn_verification_off(
    tls_server: TlsServer,
    pki: Pki,
    make_context: Callable[[Pki], ssl.SSLContext],
    cert_name: str,
    expected: ChainValidationResult,
) -> None:
    # API.md: ssl_context gives custom trust; "verification stays on". A lax context must not
    # silently connect to a server that fails verification: either it is refused
    # (ValueError) or the connect fails with the certificate error.
    counter = Counter()
    url = await tls_server(counter.accept, getattr(pki, cert_name))
    with pytest.raises((ValueError, CertificateError)) as info:
        async with trio_mws.open_message_websocket(url, ssl_context=make_context(pki)):
            pass
    if isinstance(info.value, CertificateError):
        assert expected in info.value.errors
    assert counter.requests == 0


@pytest.mark.parametrize("field", ["ssl_context", "proxy_ssl_context"])
async def test_context_changed_to_not_verify_after_it_was_set(
    tls_server: TlsServer, pki: Pki, field: str
) -> None:
    counter = Counter()
    url = await tls_server(counter.accept, pki.server)
    context = ssl.create_default_context()
    control = trio_mws.MessageWebSocketControl(**{field: context})
    if field == "proxy_ssl_context":
        control.proxy = f"https://127.0.0.1:{port_of(url)}"
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match=field):
        async with trio_mws.open_message_websocket(url, control=control):
            pass
    assert counter.requests == 0


# -- ignorable errors ---------------------------------------------------------------------------


async def test_ignorable_untrusted(tls_server: TlsServer, pki: Pki) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        await echo_frames(peer)

    url = await tls_server(handler, pki.server)
    async with trio_mws.open_message_websocket(
        url, ignorable_server_certificate_errors=[ChainValidationResult.UNTRUSTED]
    ) as ws:
        info = ws.information
        assert ChainValidationResult.UNTRUSTED in info.server_certificate_errors
        assert info.server_certificate_error_severity is SocketSslErrorSeverity.IGNORABLE
        assert info.server_certificate is not None
        assert info.server_certificate.public_bytes(Encoding.DER) == _der(pki.server)
        await ws.send(b"still works")
        assert (await ws.receive()).data == b"still works"


async def test_ignorable_expired(tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext) -> None:
    url = await tls_server(accept_and_close, pki.expired)
    async with trio_mws.open_message_websocket(
        url,
        ssl_context=trusting,
        ignorable_server_certificate_errors=[ChainValidationResult.EXPIRED],
    ) as ws:
        assert ws.information.server_certificate_errors == (ChainValidationResult.EXPIRED,)
        assert ws.information.server_certificate_error_severity is SocketSslErrorSeverity.IGNORABLE


async def test_ignorable_name_mismatch(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    url = await tls_server(accept_and_close, pki.other_name)
    async with trio_mws.open_message_websocket(
        url,
        ssl_context=trusting,
        ignorable_server_certificate_errors=[ChainValidationResult.INVALID_NAME],
    ) as ws:
        assert ws.information.server_certificate_errors == (ChainValidationResult.INVALID_NAME,)
        assert state(ws) is trio_mws.WebSocketState.OPEN


async def test_ignoring_one_error_does_not_hide_another(tls_server: TlsServer, pki: Pki) -> None:
    # Untrusted CA (ignored) AND expired (not ignored): the failure is the expiry.
    counter = Counter()
    url = await tls_server(counter.accept, pki.expired)
    error = await _certificate_error(
        url, ignorable_server_certificate_errors=[ChainValidationResult.UNTRUSTED]
    )
    assert ChainValidationResult.EXPIRED in error.errors
    assert error.certificate is not None
    assert error.status is WebErrorStatus.CERTIFICATE_EXPIRED
    assert counter.requests == 0


async def test_ignoring_untrusted_does_not_hide_a_wrong_name(
    tls_server: TlsServer, pki: Pki
) -> None:
    counter = Counter()
    url = await tls_server(counter.accept, pki.other_name)
    error = await _certificate_error(
        url, ignorable_server_certificate_errors=[ChainValidationResult.UNTRUSTED]
    )
    assert ChainValidationResult.INVALID_NAME in error.errors
    assert error.status is WebErrorStatus.CERTIFICATE_COMMON_NAME_IS_INCORRECT
    assert counter.requests == 0


# -- custom validation --------------------------------------------------------------------------


async def test_custom_validation_sync_reject(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    counter = Counter()
    url = await tls_server(counter.accept, pki.server)
    seen: list[ServerCustomValidationRequest] = []

    def validate(request: ServerCustomValidationRequest) -> None:
        seen.append(request)
        request.reject()

    ws = trio_mws.MessageWebSocket(trio_mws.MessageWebSocketControl(ssl_context=trusting))
    ws.server_custom_validation_requested = validate
    async with ws:
        with pytest.raises(CertificateRejected) as info:
            await ws.connect(url)
    assert isinstance(info.value, CertificateError)
    assert len(seen) == 1
    request = seen[0]
    assert request.server_certificate.public_bytes(Encoding.DER) == _der(pki.server)
    assert request.server_certificate_errors == ()
    assert request.server_certificate_error_severity is SocketSslErrorSeverity.NONE
    assert counter.requests == 0  # rejected before the upgrade request was sent


async def test_custom_validation_async_reject(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    url = await tls_server(accept_and_close, pki.server)

    async def validate(request: ServerCustomValidationRequest) -> None:
        await trio.lowlevel.checkpoint()
        request.reject()

    ws = trio_mws.MessageWebSocket(trio_mws.MessageWebSocketControl(ssl_context=trusting))
    ws.server_custom_validation_requested = validate
    async with ws:
        with pytest.raises(CertificateRejected):
            await ws.connect(url)
        assert state(ws) is trio_mws.WebSocketState.CONNECTING


async def test_custom_validation_accepts(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    url = await tls_server(accept_and_close, pki.server)
    calls: list[str] = []

    async def validate(request: ServerCustomValidationRequest) -> None:
        await trio.lowlevel.checkpoint()
        calls.append(_common_name(request.server_certificate))

    ws = trio_mws.MessageWebSocket(trio_mws.MessageWebSocketControl(ssl_context=trusting))
    ws.server_custom_validation_requested = validate
    async with ws:
        await ws.connect(url)
        assert state(ws) is trio_mws.WebSocketState.OPEN
    assert calls == [SERVER_CN]


async def test_custom_validation_sees_ignored_errors(tls_server: TlsServer, pki: Pki) -> None:
    url = await tls_server(accept_and_close, pki.server)
    seen: list[tuple[tuple[ChainValidationResult, ...], SocketSslErrorSeverity]] = []

    def validate(request: ServerCustomValidationRequest) -> None:
        seen.append((request.server_certificate_errors, request.server_certificate_error_severity))

    ws = trio_mws.MessageWebSocket()
    ws.control.ignorable_server_certificate_errors.append(ChainValidationResult.UNTRUSTED)
    ws.server_custom_validation_requested = validate
    async with ws:
        await ws.connect(url)
    assert seen == [((ChainValidationResult.UNTRUSTED,), SocketSslErrorSeverity.IGNORABLE)]


async def test_custom_validation_not_called_when_default_validation_fails(
    tls_server: TlsServer, pki: Pki
) -> None:
    url = await tls_server(accept_and_close, pki.server)
    calls: list[ServerCustomValidationRequest] = []
    ws = trio_mws.MessageWebSocket()
    ws.server_custom_validation_requested = calls.append
    async with ws:
        with pytest.raises(CertificateError) as info:
            await ws.connect(url)
    assert type(info.value) is CertificateError  # not CertificateRejected
    assert calls == []


# -- mutual TLS ---------------------------------------------------------------------------------


@pytest.fixture
def client_pem(pki: Pki, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "client.pem"
    pki.client.private_key_and_cert_chain_pem.write_to_path(str(path))
    yield path


async def test_client_certificate(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext, client_pem: Path
) -> None:
    peers: list[str] = []

    async def handler(peer: RawPeer) -> None:
        tls = cast(trio.SSLStream[trio.SocketStream], peer.stream)
        cert = tls.getpeercert()
        subject = dict(item[0] for item in cert["subject"]) if cert else {}
        peers.append(str(subject.get("commonName")))
        await accept_and_close(peer)

    url = await tls_server(handler, pki.server, pki.ca)
    control = trio_mws.MessageWebSocketControl(
        ssl_context=trusting, client_certificate=trio_mws.ClientCertificate(client_pem)
    )
    async with trio_mws.open_message_websocket(url, control=control) as ws:
        assert state(ws) is trio_mws.WebSocketState.OPEN
    assert peers == [CLIENT_CN]


async def test_client_certificate_missing(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    counter = Counter()
    url = await tls_server(counter.accept, pki.server, pki.ca)
    with pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url, ssl_context=trusting):
            pass
    assert info.value.__cause__ is not None
    assert counter.requests == 0


async def test_client_certificate_file_missing(
    tls_server: TlsServer, pki: Pki, tmp_path: Path
) -> None:
    url = await tls_server(accept_and_close, pki.server)
    control = trio_mws.MessageWebSocketControl(
        client_certificate=trio_mws.ClientCertificate(tmp_path / "missing.pem")
    )
    with pytest.raises(ValueError, match="client certificate"):
        async with trio_mws.open_message_websocket(url, control=control):
            pass


# -- redirects across schemes -------------------------------------------------------------------


async def test_wss_to_ws_redirect_is_refused(
    tls_server: TlsServer, raw_server: RawServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    plain = Counter()
    plain_url = await raw_server(plain.accept)

    async def redirect(peer: RawPeer) -> None:
        await answer(
            peer,
            f"HTTP/1.1 302 Found\r\nLocation: {plain_url}\r\nContent-Length: 0\r\n\r\n".encode(),
        )

    url = await tls_server(redirect, pki.server)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url, ssl_context=trusting):
            pass
    assert info.value.status is WebErrorStatus.HTTPS_TO_HTTP_ON_REDIRECTION
    assert info.value.status_code == 302
    assert plain.requests == 0


async def test_ws_to_wss_redirect_is_followed(
    tls_server: TlsServer, raw_server: RawServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    secure_url = await tls_server(accept_and_close, pki.server)

    async def redirect(peer: RawPeer) -> None:
        await answer(
            peer,
            f"HTTP/1.1 301 Moved\r\nLocation: {secure_url}\r\nContent-Length: 0\r\n\r\n".encode(),
        )

    url = await raw_server(redirect)
    async with trio_mws.open_message_websocket(url, ssl_context=trusting) as ws:
        assert ws.information.server_certificate is not None
        assert ws.information.remote_address is not None
        assert f":{ws.information.remote_address[1]}/" in secure_url


# -- one verified connection (issue 8, defect 1) ------------------------------------------------


@dataclass
class ConnectionLog:
    """Per TLS connection accepted by ``serve_tls_sequence``: the certificate's name and
    whether an upgrade request arrived on it."""

    presented: list[str]
    requests: list[str]


def log_name(cert: trustme.LeafCert) -> str:
    """A short name for a certificate in a ``ConnectionLog`` (the end of its PEM)."""
    return cert.cert_chain_pems[0].bytes().decode()[-40:]


async def serve_tls_sequence(
    certs: list[trustme.LeafCert],
    log: ConnectionLog,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A TLS server whose n-th connection presents ``certs[n]`` (the last one repeats), as an
    on-path attacker who lets one connection through and intercepts the next would."""
    names = [log_name(cert) for cert in certs]

    def next_context() -> ssl.SSLContext:
        index = min(len(log.presented), len(certs) - 1)
        log.presented.append(names[index])
        return server_context(certs[index])

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        log.requests.append(log.presented[-1])  # connections come one at a time here
        await send_101(peer)
        await finish_close(peer)

    await serve_raw(handler, tls=next_context, task_status=task_status)


async def test_data_flows_on_the_connection_that_was_verified(
    nursery: trio.Nursery, pki: Pki, trusting: ssl.SSLContext
) -> None:
    # The first connection shows the real server's certificate (trusted, expired: EXPIRED is
    # tolerated); an on-path attacker intercepts any later connection with its own CA. The
    # upgrade request must go over the connection whose certificate was validated.
    log = ConnectionLog([], [])
    url = await nursery.start(serve_tls_sequence, [pki.expired, pki.rogue], log)
    real = log_name(pki.expired)
    async with trio_mws.open_message_websocket(
        url,
        ssl_context=trusting,
        ignorable_server_certificate_errors=[ChainValidationResult.EXPIRED],
    ) as ws:
        assert ws.information.server_certificate_errors == (ChainValidationResult.EXPIRED,)
        assert ws.information.server_certificate is not None
        assert ws.information.server_certificate.public_bytes(Encoding.DER) == _der(pki.expired)
    assert log.presented == [real]  # one connection only
    assert log.requests == [real]


async def test_every_error_of_the_chain_is_reported(
    tls_server: TlsServer, pki: Pki, trusting: ssl.SSLContext
) -> None:
    # Untrusted CA and expired: tolerating EXPIRED must not hide UNTRUSTED, and both are
    # listed (OpenSSL alone stops at its first error).
    counter = Counter()
    url = await tls_server(counter.accept, pki.rogue_expired)
    error = await _certificate_error(
        url,
        ssl_context=trusting,
        ignorable_server_certificate_errors=[ChainValidationResult.EXPIRED],
    )
    assert set(error.errors) == {ChainValidationResult.UNTRUSTED, ChainValidationResult.EXPIRED}
    assert error.status is WebErrorStatus.CERTIFICATE_IS_INVALID
    assert error.certificate is not None
    assert counter.requests == 0


async def test_all_errors_listed_when_all_are_tolerated(tls_server: TlsServer, pki: Pki) -> None:
    url = await tls_server(accept_and_close, pki.rogue_expired)
    tolerated = [ChainValidationResult.UNTRUSTED, ChainValidationResult.EXPIRED]
    async with trio_mws.open_message_websocket(
        url.replace("127.0.0.1", "localhost"),  # a name the certificate does not carry
        ignorable_server_certificate_errors=[*tolerated, ChainValidationResult.INVALID_NAME],
    ) as ws:
        assert set(ws.information.server_certificate_errors) == {
            *tolerated,
            ChainValidationResult.INVALID_NAME,
        }
        assert ws.information.server_certificate_error_severity is SocketSslErrorSeverity.IGNORABLE


async def test_the_users_context_is_left_as_it_was(
    tls_server: TlsServer, pki: Pki, client_pem: Path
) -> None:
    # No private hooks: no SSLObject subclass installed on the user's context (defect 6).
    url = await tls_server(accept_and_close, pki.server)
    context = ssl.create_default_context()
    pki.ca.configure_trust(context)
    for tolerate in ([], [ChainValidationResult.EXPIRED]):
        async with trio_mws.open_message_websocket(
            url, ssl_context=context, ignorable_server_certificate_errors=tolerate
        ) as ws:
            assert state(ws) is trio_mws.WebSocketState.OPEN
        assert context.sslobject_class is ssl.SSLObject
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


async def test_own_validation_of_a_chain_with_an_intermediate(
    tls_server: TlsServer, pki: Pki
) -> None:
    # Python 3.13 gives the intermediates the server sent. Before 3.13 only the leaf can be
    # read: the issuer must then be among the trusted certificates (documented degradation).
    url = await tls_server(accept_and_close, pki.chained)
    tolerate = [ChainValidationResult.EXPIRED]
    context = ssl.create_default_context()
    pki.ca.configure_trust(context)
    if sys.version_info < (3, 13):
        error = await _certificate_error(
            url, ssl_context=context, ignorable_server_certificate_errors=tolerate
        )
        assert list(error.errors) == [ChainValidationResult.UNTRUSTED]
        pki.intermediate.configure_trust(context)  # the remedy
    async with trio_mws.open_message_websocket(
        url, ssl_context=context, ignorable_server_certificate_errors=tolerate
    ) as ws:
        assert ws.information.server_certificate_errors == ()
        assert ws.information.server_certificate_error_severity is SocketSslErrorSeverity.NONE


# -- client certificates keep the user's settings (issue 8, defect 4) ---------------------------


def _version_recorder(versions: list[str | None]) -> Handler:
    async def handler(peer: RawPeer) -> None:
        versions.append(cast(trio.SSLStream[trio.SocketStream], peer.stream).version())
        await accept_and_close(peer)

    return handler


async def test_client_certificate_keeps_the_settings_of_ssl_context(
    tls_server: TlsServer, pki: Pki, client_pem: Path
) -> None:
    versions: list[str | None] = []
    url = await tls_server(_version_recorder(versions), pki.server, pki.ca)
    context = ssl.create_default_context()
    pki.ca.configure_trust(context)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # the user's choice, kept
    control = trio_mws.MessageWebSocketControl(
        ssl_context=context, client_certificate=trio_mws.ClientCertificate(client_pem)
    )
    async with trio_mws.open_message_websocket(url, control=control):
        pass
    assert versions == ["TLSv1.2"]


async def test_client_certificate_does_not_change_the_users_context(
    tls_server: TlsServer, pki: Pki, client_pem: Path
) -> None:
    # A context shared by several sockets must not start offering the certificate to every
    # server once one socket used it.
    url = await tls_server(accept_and_close, pki.server, pki.ca)
    shared = ssl.create_default_context()
    pki.ca.configure_trust(shared)
    with_certificate = trio_mws.MessageWebSocketControl(
        ssl_context=shared, client_certificate=trio_mws.ClientCertificate(client_pem)
    )
    async with trio_mws.open_message_websocket(url, control=with_certificate):
        pass
    with pytest.raises(ConnectError):  # the server demands a certificate: none offered
        async with trio_mws.open_message_websocket(url, ssl_context=shared):
            pass


@pytest.fixture
def encrypted_client_files(pki: Pki, tmp_path: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        PrivateFormat,
        load_pem_private_key,
    )

    key = load_pem_private_key(pki.client.private_key_pem.bytes(), password=None)
    key_path = tmp_path / "client.key"
    key_path.write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"s3cret"))
    )
    cert_path = tmp_path / "client.crt"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in pki.client.cert_chain_pems))
    return cert_path, key_path


async def test_encrypted_key_without_password_is_a_value_error(
    tls_server: TlsServer, pki: Pki, encrypted_client_files: tuple[Path, Path]
) -> None:
    # OpenSSL's default would prompt on the terminal and block the event loop.
    url = await tls_server(accept_and_close, pki.server, pki.ca)
    certfile, keyfile = encrypted_client_files
    control = trio_mws.MessageWebSocketControl(
        client_certificate=trio_mws.ClientCertificate(certfile, keyfile)
    )
    with pytest.raises(ValueError, match=r"encrypted.*password"):
        async with trio_mws.open_message_websocket(url, control=control):
            pass


async def test_encrypted_key_with_its_password(
    tls_server: TlsServer,
    pki: Pki,
    trusting: ssl.SSLContext,
    encrypted_client_files: tuple[Path, Path],
) -> None:
    url = await tls_server(accept_and_close, pki.server, pki.ca)
    certfile, keyfile = encrypted_client_files
    for password in ("s3cret", b"wrong"):
        control = trio_mws.MessageWebSocketControl(
            ssl_context=trusting,
            client_certificate=trio_mws.ClientCertificate(certfile, keyfile, password),
        )
        if password == b"wrong":
            with pytest.raises(ValueError, match="client certificate"):
                async with trio_mws.open_message_websocket(url, control=control):
                    pass
        else:
            async with trio_mws.open_message_websocket(url, control=control) as ws:
                assert state(ws) is trio_mws.WebSocketState.OPEN


# -- the default context: once per process, off the event loop (issue 8, defect 5) -------------


async def test_default_context_is_built_once_off_the_event_loop(
    tls_server: TlsServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await tls_server(accept_and_close, pki.server)
    monkeypatch.setattr(tls_contexts, "_cache", tls_contexts._ProcessCache())
    builds: list[int] = []
    create = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        builds.append(threading.get_ident())
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)

    async def attempt() -> None:
        with pytest.raises(CertificateError):  # system trust: the test CA is unknown
            async with trio_mws.open_message_websocket(url):
                pass

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(attempt)
    await attempt()
    assert len(builds) == 1
    assert builds[0] != threading.get_ident()  # a worker thread, not the event loop


# -- https:// proxies: TLS to the proxy, then TLS to the server inside it (scope 6) --------------


async def _start_https_proxy(nursery: trio.Nursery, cert: trustme.LeafCert, log: ProxyLog) -> int:
    context = server_context(cert)
    connect = http_proxy(log)

    async def handle(tcp: trio.SocketStream) -> None:
        stream = trio.SSLStream(tcp, context, server_side=True)
        try:
            await stream.do_handshake()
            await connect(cast(trio.SocketStream, stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await nursery.start(functools.partial(trio.serve_tcp, host="127.0.0.1"), handle, 0)
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def test_wss_through_an_https_proxy(
    nursery: trio.Nursery, pki: Pki, trusting: ssl.SSLContext
) -> None:
    log = ProxyLog()
    proxy_port = await _start_https_proxy(nursery, pki.server, log)
    server = cast(
        WebSocketServer,
        await nursery.start(
            serve_websocket, echo_handler, "127.0.0.1", 0, server_context(pki.chained)
        ),
    )
    control = trio_mws.MessageWebSocketControl(
        proxy=f"https://127.0.0.1:{proxy_port}", proxy_ssl_context=trusting, ssl_context=trusting
    )
    url = f"wss://127.0.0.1:{server.port}/"
    async with trio_mws.open_message_websocket(url, control=control) as ws:
        await ws.send("TLS in TLS")
        assert (await ws.receive()).text == "TLS in TLS"
        assert ws.information.server_certificate is not None
        assert _common_name(ws.information.server_certificate) == "chained"
        assert ws.information.remote_address == ("127.0.0.1", proxy_port)
    assert log.targets == [("127.0.0.1", server.port)]


async def test_ws_through_an_https_proxy(
    nursery: trio.Nursery, pki: Pki, trusting: ssl.SSLContext, echo_url: str
) -> None:
    log = ProxyLog()
    proxy_port = await _start_https_proxy(nursery, pki.server, log)
    async with trio_mws.open_message_websocket(
        echo_url, proxy=f"https://127.0.0.1:{proxy_port}", proxy_ssl_context=trusting
    ) as ws:
        await ws.send("over the proxy's TLS")
        assert (await ws.receive()).text == "over the proxy's TLS"
    assert len(log.targets) == 1


async def test_https_proxy_certificate_is_verified(
    nursery: trio.Nursery, pki: Pki, trusting: ssl.SSLContext, echo_url: str
) -> None:
    # The proxy's trust is its own: trusting the server's CA (ssl_context) does not make an
    # unknown proxy trusted, and nothing is sent to it.
    log = ProxyLog()
    proxy_port = await _start_https_proxy(nursery, pki.rogue, log)
    with pytest.raises(CertificateError) as info:
        async with trio_mws.open_message_websocket(
            echo_url, proxy=f"https://127.0.0.1:{proxy_port}", ssl_context=trusting
        ):
            pass
    assert info.value.status is WebErrorStatus.CERTIFICATE_IS_INVALID
    assert ChainValidationResult.UNTRUSTED in info.value.errors
    assert log.requests == []
