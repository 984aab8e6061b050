"""Errors and WebErrorStatus: every locally producible failure, classified and chained.

Each failure is produced for real (a refused port, a silent listener, a DNS name that cannot
resolve, scripted HTTP answers) and checked the way a user sees it: the exception type, its
``status``, its fields and its ``__cause__``.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import cast

import h11
import pytest
import trio
import trio.lowlevel
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

import trio_mws
from trio_mws import ConnectError, HandshakeError, WebErrorStatus, WebSocketError

from .opening_helpers import (
    RawServer,
    accept_and_close,
    answer,
    finish_close,
    refused_url,
    send_101,
    serve_tls_raw,
    state,
)
from .rawserver import RawPeer

Status = WebErrorStatus


# -- WebSocketError.get_status ----------------------------------------------------------------


def _os_error(code: int) -> OSError:
    return OSError(code, f"errno {code}")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (_os_error(errno.ECONNREFUSED), Status.CANNOT_CONNECT),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), Status.CANNOT_CONNECT),
        (_os_error(errno.ENETUNREACH), Status.SERVER_UNREACHABLE),
        (_os_error(errno.EHOSTUNREACH), Status.SERVER_UNREACHABLE),
        (_os_error(errno.ECONNRESET), Status.CONNECTION_RESET),
        (_os_error(errno.ECONNABORTED), Status.CONNECTION_ABORTED),
        (_os_error(errno.EPIPE), Status.CONNECTION_ABORTED),
        (_os_error(errno.ETIMEDOUT), Status.TIMEOUT),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            Status.HOST_NAME_NOT_RESOLVED,
        ),
        (trio.TooSlowError(), Status.TIMEOUT),
        (TimeoutError(), Status.TIMEOUT),
        (ValueError("not a network error"), Status.UNKNOWN),
        (KeyboardInterrupt(), Status.UNKNOWN),
        (None, Status.UNKNOWN),
        (ConnectError("ours", Status.CANNOT_CONNECT), Status.CANNOT_CONNECT),
        (HandshakeError("ours", Status.NOT_FOUND, status_code=404), Status.NOT_FOUND),
        (trio_mws.ConnectionClosed("lost", Status.DISCONNECTED), Status.DISCONNECTED),
        (WebSocketError("plain"), Status.UNKNOWN),
    ],
    ids=repr,
)
def test_get_status_classifies(error: BaseException | None, status: WebErrorStatus) -> None:
    assert WebSocketError.get_status(error) is status


def test_get_status_of_a_certificate_verification_error() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_code = 10  # X509_V_ERR_CERT_HAS_EXPIRED
    assert WebSocketError.get_status(error) is Status.CERTIFICATE_EXPIRED
    error.verify_code = 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert WebSocketError.get_status(error) is Status.CERTIFICATE_IS_INVALID


def test_get_status_looks_through_wrappers() -> None:
    broken = trio.BrokenResourceError("broken")
    broken.__cause__ = _os_error(errno.ECONNRESET)
    assert WebSocketError.get_status(broken) is Status.CONNECTION_RESET
    group = ExceptionGroup("many", [ValueError("x"), _os_error(errno.ECONNREFUSED)])
    assert WebSocketError.get_status(group) is Status.CANNOT_CONNECT
    # trio.open_tcp_stream's "all attempts failed" OSError carries the real errors as cause.
    outer = OSError("all attempts to connect to 127.0.0.1:1 failed")
    outer.__cause__ = ExceptionGroup("attempts", [_os_error(errno.ECONNREFUSED)])
    assert WebSocketError.get_status(outer) is Status.CANNOT_CONNECT


async def test_get_status_of_a_real_cancellation() -> None:
    caught: list[BaseException] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as exc:
            caught.append(exc)
            raise
    assert scope.cancelled_caught
    assert len(caught) == 1
    assert WebSocketError.get_status(caught[0]) is Status.OPERATION_CANCELED


class _HostileErrno(OSError):
    @property
    def errno(self) -> int:  # type: ignore[override]
        raise RuntimeError("errno exploded")


class _HostileStr:
    def __str__(self) -> str:
        raise RuntimeError("str exploded")


def test_get_status_never_raises() -> None:
    looped_a = OSError("a")
    looped_b = OSError("b")
    looped_a.__cause__ = looped_b
    looped_b.__cause__ = looped_a  # a cause cycle must not hang or raise
    for error in (_HostileErrno("x"), _HostileStr(), "not an exception", 42):
        assert WebSocketError.get_status(error) is Status.UNKNOWN  # type: ignore[arg-type]
    # An OSError that says nothing more: the system gave up on the operation.
    assert WebSocketError.get_status(looped_a) is Status.CONNECTION_ABORTED


# -- classification by type, not only by errno --------------------------------------------------


def _wrapping(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def _happy_eyeballs(*attempts: Exception) -> OSError:
    """Like trio.open_tcp_stream's failure: an OSError without errno from a group."""
    message = "all attempts to connect to example.test:80 failed"
    return cast(OSError, _wrapping(OSError(message), ExceptionGroup(message, list(attempts))))


def _bare_verification_error() -> ssl.SSLCertVerificationError:
    return ssl.SSLCertVerificationError()  # no verify_code attribute at all


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConnectionRefusedError(), Status.CANNOT_CONNECT),
        (ConnectionResetError(), Status.CONNECTION_RESET),
        (ConnectionAbortedError(), Status.CONNECTION_ABORTED),
        (BrokenPipeError(), Status.CONNECTION_ABORTED),
        (ConnectionResetError("reset by peer"), Status.CONNECTION_RESET),
        (socket.herror(1, "Unknown host"), Status.HOST_NAME_NOT_RESOLVED),
        (socket.herror(), Status.HOST_NAME_NOT_RESOLVED),
        (socket.gaierror(), Status.HOST_NAME_NOT_RESOLVED),
        (TimeoutError(), Status.TIMEOUT),
        (TimeoutError(errno.ETIMEDOUT, "timed out"), Status.TIMEOUT),
        (
            _happy_eyeballs(ConnectionRefusedError(), ConnectionRefusedError()),
            Status.CANNOT_CONNECT,
        ),
        (_happy_eyeballs(TimeoutError()), Status.TIMEOUT),
        (_happy_eyeballs(OSError("odd"), socket.herror()), Status.HOST_NAME_NOT_RESOLVED),
        (_bare_verification_error(), Status.CERTIFICATE_IS_INVALID),
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            Status.CERTIFICATE_IS_INVALID,
        ),
        (ssl.SSLEOFError(), Status.DISCONNECTED),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), Status.DISCONNECTED),
        (ssl.SSLZeroReturnError(), Status.DISCONNECTED),
        (ssl.SSLSyscallError(5, "Some I/O error occurred"), Status.CONNECTION_ABORTED),
        (
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
            Status.CONNECTION_ABORTED,
        ),
        (ssl.SSLError(), Status.CONNECTION_ABORTED),
        (ssl.SSLWantReadError(), Status.CONNECTION_ABORTED),
        (ssl.SSLWantWriteError(), Status.CONNECTION_ABORTED),
        (_wrapping(trio.BrokenResourceError(), ssl.SSLEOFError()), Status.DISCONNECTED),
        (_wrapping(trio.BrokenResourceError(), ConnectionResetError()), Status.CONNECTION_RESET),
        (trio.BrokenResourceError(), Status.CONNECTION_ABORTED),
        (trio.ClosedResourceError(), Status.CONNECTION_ABORTED),
        (h11.RemoteProtocolError("bad"), Status.ERROR_HTTP_INVALID_SERVER_RESPONSE),
        (UnicodeError("label empty or too long"), Status.HOST_NAME_NOT_RESOLVED),
        (OSError(errno.EADDRNOTAVAIL, "cannot assign requested address"), Status.CANNOT_CONNECT),
        (OSError(errno.EMFILE, "too many open files"), Status.CANNOT_CONNECT),
        (OSError("no errno, nothing more"), Status.CONNECTION_ABORTED),
    ],
    ids=repr,
)
def test_get_status_by_type(error: BaseException, status: WebErrorStatus) -> None:
    assert WebSocketError.get_status(error) is status


def _build(kind: type[BaseException], args: list[object]) -> BaseException:
    if issubclass(kind, h11.ProtocolError):
        return kind(repr(args))  # its message is required
    return kind(*args)


def _exceptions() -> st.SearchStrategy[BaseException]:
    """Exceptions of every type a network operation can raise, built with odd arguments."""
    args = st.lists(
        st.none()
        | st.integers(-(2**70), 2**70)
        | st.text(max_size=8)
        | st.binary(max_size=4)
        | st.lists(st.integers(), max_size=2),
        max_size=4,
    )
    kinds = st.sampled_from(
        [
            OSError, ConnectionError, ConnectionRefusedError, ConnectionResetError,
            ConnectionAbortedError, BrokenPipeError, TimeoutError, InterruptedError,
            socket.herror, socket.gaierror, socket.timeout, ssl.SSLError, ssl.SSLZeroReturnError,
            ssl.SSLWantReadError, ssl.SSLWantWriteError, ssl.SSLSyscallError, ssl.SSLEOFError,
            ssl.SSLCertVerificationError, trio.BrokenResourceError, trio.ClosedResourceError,
            trio.TooSlowError, h11.RemoteProtocolError, UnicodeError,
        ]
    )  # fmt: skip
    leaves = st.builds(_build, kinds, args)
    return st.recursive(
        leaves,
        lambda inner: (
            st.builds(_wrapping, inner, inner)
            | st.builds(
                lambda items: ExceptionGroup("group", items),
                st.lists(inner, min_size=1, max_size=3),
            )
        ),
        max_leaves=6,
    )


@settings(max_examples=300, deadline=None)
@given(error=_exceptions(), cycle=st.booleans())
def test_get_status_of_anything_the_network_raises(error: BaseException, cycle: bool) -> None:
    if cycle:  # a cause cycle must neither hang nor raise
        innermost = error
        while isinstance(innermost.__cause__, BaseException):
            innermost = innermost.__cause__
        if innermost is not error:
            innermost.__cause__ = error
    status = WebSocketError.get_status(error)
    assert isinstance(status, WebErrorStatus)
    assert status is not Status.UNKNOWN, repr(error)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from([Exception, ValueError, KeyError, RuntimeError, BaseException, OSError]),
    args=st.lists(st.from_type(object), max_size=3),
)
def test_get_status_never_raises_for_odd_objects(
    kind: type[BaseException], args: list[object]
) -> None:
    try:
        error = kind(*args)
    except Exception:
        return
    assert isinstance(WebSocketError.get_status(error), WebErrorStatus)


async def test_tls_eof_without_close_notify_is_like_tcp_eof(raw_server: RawServer) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def vanish(peer: RawPeer) -> None:
        await peer.accept()
        stream = peer.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream  # TCP ends under TLS: no close_notify
        await stream.aclose()

    statuses = []
    async with trio.open_nursery() as nursery:
        tls_url = await nursery.start(serve_tls_raw, vanish, server_context)
        for url in (await raw_server(vanish), tls_url):
            with trio.fail_after(30):
                async with trio_mws.open_message_websocket(url, ssl_context=client_context) as ws:
                    with pytest.raises(trio_mws.ConnectionClosed) as info:
                        await ws.receive()
            statuses.append((info.value.status, info.value.code))
        nursery.cancel_scope.cancel()
    assert statuses == [(Status.DISCONNECTED, 1006)] * 2  # plain TCP, then TLS


@pytest.mark.parametrize("proxy", [False, True])
async def test_dns_label_of_64_characters(proxy: bool) -> None:
    host = "a" * 64 + ".example"
    with refused_url() as refused, trio.fail_after(30), pytest.raises(ConnectError) as info:
        # No proxy can resolve it either: refused before any connection is tried.
        proxy_url = refused.replace("ws://", "socks5h://") if proxy else None
        async with trio_mws.open_message_websocket(f"ws://{host}/", proxy=proxy_url):
            pass
    assert info.value.status is Status.HOST_NAME_NOT_RESOLVED
    assert host in str(info.value)
    assert "63 characters" in str(info.value)


async def test_internationalised_name_that_idna_refuses() -> None:
    # Left to the resolver's IDNA encoding (trio uses the idna package): its UnicodeError
    # becomes a ConnectError, never escapes.
    host = "\u00e9" * 64 + ".example"
    with trio.fail_after(30), pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(f"ws://{host}/"):
            pass
    assert info.value.status is Status.HOST_NAME_NOT_RESOLVED
    assert "not a valid DNS name" in str(info.value)
    assert isinstance(info.value.__cause__, UnicodeError)
    assert WebSocketError.get_status(info.value.__cause__) is Status.HOST_NAME_NOT_RESOLVED


# -- locally producible failures of connect ---------------------------------------------------


async def test_refused_port_is_cannot_connect() -> None:
    with refused_url() as url, pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url):
            pytest.fail("connected to a port that is not listening")
    error = info.value
    assert type(error) is ConnectError
    assert error.status is Status.CANNOT_CONNECT
    assert isinstance(error.__cause__, OSError)
    assert WebSocketError.get_status(error.__cause__) is Status.CANNOT_CONNECT


async def test_silent_server_times_out(raw_server: RawServer, autojump_clock: object) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        await trio.sleep_forever()  # accepts TCP, reads the request, never answers

    url = await raw_server(handler)
    start = trio.current_time()
    with pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url, connect_timeout=7):
            pass
    assert info.value.status is Status.TIMEOUT
    assert isinstance(info.value.__cause__, trio.TooSlowError)
    assert 7 <= trio.current_time() - start < 8


async def test_silent_tls_server_times_out(raw_server: RawServer, autojump_clock: object) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.wait_eof()  # never answers the TLS ClientHello

    url = (await raw_server(handler)).replace("ws://", "wss://")
    start = trio.current_time()
    with pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url, connect_timeout=3):
            pass
    assert info.value.status is Status.TIMEOUT
    assert 3 <= trio.current_time() - start < 4


async def test_dns_failure_is_host_name_not_resolved() -> None:
    # .invalid never resolves (RFC 6761); the resolver answers at once, without network.
    with trio.fail_after(30):  # generous: only a hang fails this
        with pytest.raises(ConnectError) as info:
            async with trio_mws.open_message_websocket("ws://nonexistent.invalid/"):
                pass
    assert info.value.status is Status.HOST_NAME_NOT_RESOLVED
    assert isinstance(info.value.__cause__, OSError)
    assert WebSocketError.get_status(info.value.__cause__) is Status.HOST_NAME_NOT_RESOLVED


async def _handshake_error(raw_server: RawServer, response: bytes) -> HandshakeError:
    async def handler(peer: RawPeer) -> None:
        await answer(peer, response)

    url = await raw_server(handler)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url):
            pytest.fail("connected although the server did not upgrade")
    return info.value


@pytest.mark.parametrize(
    ("code", "reason", "status"),
    [
        (404, "Not Found", Status.NOT_FOUND),
        (403, "Forbidden", Status.FORBIDDEN),
        (400, "Bad Request", Status.BAD_REQUEST),
        (418, "I'm a teapot", Status.UNEXPECTED_CLIENT_ERROR),
        (429, "Too Many Requests", Status.UNEXPECTED_CLIENT_ERROR),
        (500, "Internal Server Error", Status.INTERNAL_SERVER_ERROR),
        (503, "Service Unavailable", Status.SERVICE_UNAVAILABLE),
        (599, "Whatever", Status.UNEXPECTED_SERVER_ERROR),
        (200, "OK", Status.UNEXPECTED_STATUS_CODE),
        (301, "Moved Permanently", Status.MOVED_PERMANENTLY),  # no Location: not followed
        (308, "Permanent Redirect", Status.UNEXPECTED_REDIRECTION),  # no Windows member
        (399, "Odd", Status.UNEXPECTED_REDIRECTION),
    ],
)
async def test_http_status_instead_of_upgrade(
    raw_server: RawServer, code: int, reason: str, status: WebErrorStatus
) -> None:
    body = f"error {code}".encode()
    response = (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nX-Trace: t-{code}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    error = await _handshake_error(raw_server, response)
    assert error.status is status
    assert error.status_code == code
    assert ("X-Trace", f"t-{code}") in error.headers
    assert ("Content-Type", "text/plain") in error.headers
    assert error.body == body
    assert WebSocketError.get_status(error) is status


async def test_error_body_delimited_by_connection_close(raw_server: RawServer) -> None:
    error = await _handshake_error(raw_server, b"HTTP/1.0 404 Not Found\r\n\r\nno such chat")
    assert (error.status, error.status_code) == (Status.NOT_FOUND, 404)
    assert error.body == b"no such chat"


async def test_chunked_error_body(raw_server: RawServer) -> None:
    error = await _handshake_error(
        raw_server,
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n",
    )
    assert error.status is Status.SERVICE_UNAVAILABLE
    assert error.body == b"Wikipedia"


async def test_huge_error_body_is_bounded(raw_server: RawServer) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    error = await _handshake_error(
        raw_server,
        f"HTTP/1.1 500 Oops\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body,
    )
    assert error.status is Status.INTERNAL_SERVER_ERROR
    assert 0 < len(error.body) < len(body)
    assert body.startswith(error.body)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"hello\r\n\r\n", id="garbage"),
        pytest.param(b"HTTP/1.1 OK\r\n\r\n", id="no-status-code"),
        pytest.param(b"HTTP/1.1 101 Switching\r\nbad header line\r\n\r\n", id="bad-header"),
        pytest.param(b"HTTP/1.1 101 Switch", id="eof-mid-head"),
        pytest.param(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            id="bad-accept",
        ),
        pytest.param(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", id="no-upgrade"
        ),
        pytest.param(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            id="no-connection",
        ),
        pytest.param(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            id="wrong-upgrade",
        ),
    ],
)
async def test_invalid_server_response(raw_server: RawServer, response: bytes) -> None:
    error = await _handshake_error(raw_server, response)
    assert error.status is Status.ERROR_HTTP_INVALID_SERVER_RESPONSE


async def test_eof_before_any_response(raw_server: RawServer) -> None:
    # The server reads the request and closes without a byte: like WinHTTP (and like an EOF
    # in the middle of the head), an invalid server response, not a lost open connection.
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()

    url = await raw_server(handler)
    with pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url):
            pass
    assert info.value.status is Status.ERROR_HTTP_INVALID_SERVER_RESPONSE


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("Sec-WebSocket-Protocol: chat.v9\r\n", id="unrequested-subprotocol"),
        pytest.param("Sec-WebSocket-Extensions: permessage-deflate\r\n", id="unrequested-ext"),
        pytest.param("Sec-WebSocket-Extensions: x-webkit-foo\r\n", id="unknown-extension"),
    ],
)
async def test_unrequested_negotiation_is_invalid(raw_server: RawServer, extra: str) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept(extra)
        await peer.wait_eof()

    url = await raw_server(handler)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url):
            pytest.fail("accepted a negotiation it never offered")
    assert info.value.status is Status.ERROR_HTTP_INVALID_SERVER_RESPONSE
    assert info.value.status_code == 101


async def test_subprotocol_not_among_those_offered(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.accept("Sec-WebSocket-Protocol: chat.v2\r\n")
        await peer.wait_eof()

    url = await raw_server(handler)
    with pytest.raises(HandshakeError) as info:
        async with trio_mws.open_message_websocket(url, protocols=["chat.v1"]):
            pass
    assert info.value.status is Status.ERROR_HTTP_INVALID_SERVER_RESPONSE


# -- exactly one exception, chained, never a group --------------------------------------------


async def test_plain_ws_to_tls_server_is_a_connect_error(raw_server: RawServer) -> None:
    # A wss:// client talking to a plain HTTP server: the TLS layer fails, not a bare SSLError.
    async def handler(peer: RawPeer) -> None:
        await peer.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await peer.wait_eof()

    url = (await raw_server(handler)).replace("ws://", "wss://")
    with pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url):
            pass
    assert not isinstance(info.value, trio_mws.CertificateError)
    assert info.value.__cause__ is not None
    assert info.value.status is not Status.UNKNOWN


async def test_server_closing_during_tls_is_a_connect_error(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.stream.aclose()

    url = (await raw_server(handler)).replace("ws://", "wss://")
    with pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url):
            pass
    assert info.value.__cause__ is not None


async def test_server_reset_before_response(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        peer.stream.socket.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        peer.stream.socket.close()  # linger 0: RST instead of FIN

    url = await raw_server(handler)
    with pytest.raises(ConnectError) as info:
        async with trio_mws.open_message_websocket(url):
            pass
    assert info.value.status is Status.CONNECTION_RESET
    assert info.value.__cause__ is not None


async def test_connect_error_is_one_exception_not_a_group() -> None:
    with refused_url() as url:
        try:
            async with trio_mws.open_message_websocket(url):
                pass
        except BaseException as exc:
            escaped: BaseException = exc
        else:
            pytest.fail("no exception")
    assert type(escaped) is ConnectError
    assert not isinstance(escaped, BaseExceptionGroup)


async def test_body_exception_escapes_unchanged(echo_url: str) -> None:
    cause = KeyError("cause")
    try:
        try:
            raise IndexError("context")
        except IndexError:
            async with trio_mws.open_message_websocket(echo_url) as ws:
                await ws.send("hi")
                raise ValueError("from the body") from cause
    except BaseException as exc:
        escaped: BaseException = exc
    assert type(escaped) is ValueError
    assert str(escaped) == "from the body"
    assert escaped.__cause__ is cause
    assert isinstance(escaped.__context__, IndexError)
    # Leaving by an exception closed with 1011.
    assert ws.closed is not None
    assert ws.closed.code == 1011
    assert state(ws) is trio_mws.WebSocketState.CLOSED


async def test_body_exception_with_manual_connect_escapes_unchanged(echo_url: str) -> None:
    error = RuntimeError("mine")
    ws = trio_mws.MessageWebSocket()
    with pytest.raises(RuntimeError) as info:
        async with ws:
            await ws.connect(echo_url)
            raise error
    assert info.value is error


async def test_handshake_failure_inside_run_message_websocket(raw_server: RawServer) -> None:
    async def handler(peer: RawPeer) -> None:
        await answer(peer, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    url = await raw_server(handler)
    async with trio.open_nursery() as nursery:
        with pytest.raises(HandshakeError) as info:
            await nursery.start(trio_mws.run_message_websocket, url)
    assert info.value.status is Status.NOT_FOUND


async def test_cancellation_is_never_converted(raw_server: RawServer) -> None:
    requested = trio.Event()

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        requested.set()
        await trio.sleep_forever()

    url = await raw_server(handler)
    with trio.CancelScope() as scope:

        async def cancel_when_requested() -> None:
            await requested.wait()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_when_requested)
            async with trio_mws.open_message_websocket(url):
                pytest.fail("connected to a server that never answered")
    assert scope.cancelled_caught


async def test_failed_connect_leaves_the_socket_reusable(raw_server: RawServer) -> None:
    # The socket is not poisoned by a status failure: a second connect in the block works.
    attempts: list[str] = []

    async def handler(peer: RawPeer) -> None:
        await peer.read_request()
        attempts.append(peer.request_head.decode().split(" ")[1])
        if len(attempts) == 1:
            await peer.send(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
            return
        await send_101(peer)
        await finish_close(peer)

    url = await raw_server(handler)
    ws = trio_mws.MessageWebSocket()
    async with ws:
        with pytest.raises(HandshakeError) as info:
            await ws.connect(url)
        assert info.value.status is Status.SERVICE_UNAVAILABLE
        assert state(ws) is trio_mws.WebSocketState.CONNECTING
        await ws.connect(url + "again")
        assert state(ws) is trio_mws.WebSocketState.OPEN
    assert attempts == ["/", "/again"]
    assert ws.closed is not None and ws.closed.code == 1000


async def test_accepting_server_still_works(raw_server: RawServer) -> None:
    # Sanity check of the scripted 101 used by the failure tests above.
    async def handler(peer: RawPeer) -> None:
        await accept_and_close(peer)

    url = await raw_server(handler)
    async with trio_mws.open_message_websocket(url) as ws:
        assert state(ws) is trio_mws.WebSocketState.OPEN
