"""``run_reconnecting`` and ``RetryPolicy``: reconnecting with backoff that respects the server.

Servers are raw scripted servers (``RawPeer``) on 127.0.0.1 that count their connections and
note the (virtual) time of each; the backoff runs on ``autojump_clock``, so minutes of
backoff pass in milliseconds and delays are exact. A ``random.Random`` whose ``uniform``
returns its upper bound makes the jittered delays predictable where a test needs that.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

import trio_mws
from trio_mws import (
    CertificateError,
    ConnectError,
    ConnectionClosed,
    HandshakeError,
    MessageTooBig,
    MessageWebSocket,
    RetryPolicy,
    WebErrorStatus,
    WebSocketError,
    run_reconnecting,
)
from trio_mws.retry import parse_retry_after

from .opening_helpers import RawServer, finish_close, refused_url
from .rawserver import RawPeer, close_payload, frame

DOCS = Path(__file__).resolve().parent.parent / "docs" / "howto" / "reconnecting.md"


#: One connection's script, on the server side.
Step = Callable[[RawPeer], Awaitable[None]]


class UpperBound(random.Random):
    """Jitter that always picks the top of its range: the delays become the bounds."""

    def uniform(self, a: float, b: float) -> float:
        return b


#: For tests where no retry should happen: a wrong retry shows as a second connection
#: instead of an endless loop.
BOUNDED = RetryPolicy(initial_delay=0.1, max_attempts=2)


class Script:
    """A server whose n-th connection (from 1) runs ``steps[n - 1]`` (the last one repeats);
    it records when each connection arrived and ended, in trio time."""

    def __init__(self, *steps: Step) -> None:
        self.steps = steps
        self.arrived: list[float] = []
        self.ended: list[float] = []

    def waits(self) -> list[float]:
        """Seconds between the end of each connection and the start of the next."""
        return [b - a for a, b in zip(self.ended, self.arrived[1:], strict=False)]

    @property
    def connections(self) -> int:
        return len(self.arrived)

    async def __call__(self, peer: RawPeer) -> None:
        self.arrived.append(trio.current_time())
        try:
            await self.steps[min(len(self.arrived), len(self.steps)) - 1](peer)
        finally:
            self.ended.append(trio.current_time())


def reject(status: str, *headers: str) -> Step:
    """Answer the upgrade with ``status`` (e.g. ``"503 Service Unavailable"``)."""

    async def step(peer: RawPeer) -> None:
        await peer.read_request()
        lines = "".join(f"{header}\r\n" for header in headers)
        await peer.send(f"HTTP/1.1 {status}\r\n{lines}Content-Length: 0\r\n\r\n".encode())

    return step


def accept_then(*messages: str, hold: float = 0.0, close_code: int | None = None) -> Step:
    """Accept, send ``messages``, wait ``hold`` seconds, then either send a close frame with
    ``close_code`` and finish the handshake, or (``None``) drop TCP without a close frame."""

    async def step(peer: RawPeer) -> None:
        await peer.accept()
        for message in messages:
            await peer.send(frame(1, message.encode()))
        await trio.sleep(hold)
        if close_code is not None:
            await peer.send(frame(8, close_payload(close_code)))
            await peer.read_close()

    return step


def serve_until_client_closes(record: list[int | None]) -> Step:
    """Accept, send "ready", and answer the client's close; its code goes to ``record``."""

    async def step(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(1, b"ready"))
        code = await peer.read_close()
        record.append(code)
        await peer.send(frame(8, close_payload(code) if code is not None else b""))

    return step


async def first_message(ws: MessageWebSocket) -> str:
    return (await ws.receive()).text


# -- reconnecting around a handler -----------------------------------------------------------


async def test_503_with_retry_after_twice_then_accepted(
    raw_server: RawServer, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    closes: list[int | None] = []
    script = Script(
        reject("503 Service Unavailable", "Retry-After: 5"),
        reject("503 Service Unavailable", "Retry-After: 5"),
        serve_until_client_closes(closes),
    )
    url = await raw_server(script)
    received: list[str] = []

    async def handler(ws: MessageWebSocket) -> None:
        received.append(await first_message(ws))

    caplog.set_level(logging.INFO, logger="trio_mws")
    start = trio.current_time()
    await run_reconnecting(url, handler, retry=RetryPolicy(initial_delay=0.5, rng=UpperBound()))
    # The server asked for 5 s twice; the backoff alone would have waited 0.5 s and 1 s.
    assert script.arrived == [start, start + 5.0, start + 10.0]
    assert received == ["ready"]
    assert closes == [1000]  # the handler returned: a normal close
    retries = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
    assert len(retries) == 2
    assert all("HTTP 503" in m and "SERVICE_UNAVAILABLE" in m and "5.000 s" in m for m in retries)
    assert all(r.levelno == logging.WARNING for r in caplog.records if "reconnecting" in r.msg)


async def test_429_with_an_http_date_retry_after(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    closes: list[int | None] = []

    async def too_many(peer: RawPeer) -> None:
        when = email.utils.formatdate(time.time() + 30, usegmt=True)  # whole seconds
        await reject("429 Too Many Requests", f"Retry-After: {when}")(peer)

    script = Script(too_many, serve_until_client_closes(closes))
    url = await raw_server(script)
    await run_reconnecting(url, first_message, retry=RetryPolicy(initial_delay=0.1))
    waited = script.arrived[1] - script.arrived[0]
    assert 28.0 <= waited <= 30.0  # the date has whole seconds; wall time moved a little
    assert closes == [1000]


async def test_retry_after_is_bounded_by_max_delay(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    script = Script(
        reject("503 Service Unavailable", "Retry-After: 86400"),
        serve_until_client_closes([]),
    )
    url = await raw_server(script)
    await run_reconnecting(url, first_message, retry=RetryPolicy(max_delay=7.0))
    assert script.arrived[1] - script.arrived[0] == 7.0


@pytest.mark.parametrize("swallow", [False, True], ids=["handler-raises", "handler-returns"])
async def test_connection_dropped_mid_stream_reconnects(
    raw_server: RawServer, autojump_clock: trio.abc.Clock, swallow: bool
) -> None:
    closes: list[int | None] = []
    script = Script(accept_then("one", "two"), serve_until_client_closes(closes))
    url = await raw_server(script)
    calls: list[list[str]] = []

    async def handler(ws: MessageWebSocket) -> None:
        seen: list[str] = []
        calls.append(seen)
        try:
            async for event in ws:
                seen.append(event.text)
                if event.text == "ready":
                    return  # the second connection: done
        except ConnectionClosed as exc:
            assert exc.code == 1006
            if not swallow:
                raise

    await run_reconnecting(url, handler, retry=RetryPolicy(rng=UpperBound()))
    assert calls == [["one", "two"], ["ready"]]  # called again, nothing lost on the first
    assert script.waits() == pytest.approx([1.0])  # initial_delay
    assert closes == [1000]


async def test_headers_and_protocols_go_with_every_connection(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[tuple[str | None, str | None]] = []

    def recording(step: Step) -> Step:
        async def record(peer: RawPeer) -> None:
            await step(peer)
            seen.append(
                (
                    peer.request_header("Authorization"),
                    peer.request_header("Sec-WebSocket-Protocol"),
                )
            )

        return record

    closes: list[int | None] = []
    script = Script(recording(accept_then("one")), recording(serve_until_client_closes(closes)))
    url = await raw_server(script)

    async def handler(ws: MessageWebSocket) -> None:
        async for event in ws:
            if event.text == "ready":
                return

    await run_reconnecting(
        url,
        handler,
        retry=RetryPolicy(rng=UpperBound()),
        protocols=["feed.v1"],
        headers={"Authorization": "Bearer t0k3n"},
    )
    assert seen == [("Bearer t0k3n", "feed.v1")] * 2
    with pytest.raises(ValueError):
        await run_reconnecting(url, handler, headers={"X-Bad": "a\r\nb"})
    with pytest.raises(TypeError):
        await run_reconnecting(url, handler, protocols="feed.v1")


async def test_handler_with_its_own_nursery_gets_one_exception(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    script = Script(accept_then("hello"))
    url = await raw_server(script)

    async def handler(ws: MessageWebSocket) -> None:
        async def reader() -> None:
            async for _ in ws:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)

    with pytest.raises(ConnectionClosed) as info:
        await run_reconnecting(url, handler, retry=RetryPolicy(max_attempts=2))
    assert type(info.value) is ConnectionClosed  # not an ExceptionGroup
    assert info.value.code == 1006
    assert info.value.status is WebErrorStatus.DISCONNECTED
    assert isinstance(info.value.__context__, BaseExceptionGroup)
    assert script.connections == 2


async def test_refused_connections_are_retried(autojump_clock: trio.abc.Clock) -> None:
    policy = RetryPolicy(max_attempts=3, rng=UpperBound())
    start = trio.current_time()
    with refused_url() as url, pytest.raises(ConnectError) as info:
        await run_reconnecting(url, first_message, retry=policy)
    assert info.value.status is WebErrorStatus.CANNOT_CONNECT
    assert trio.current_time() - start == 1.0 + 2.0  # two backoff sleeps, three attempts


async def test_message_too_big_is_not_retried(raw_server: RawServer) -> None:
    codes: list[int | None] = []

    async def too_big(peer: RawPeer) -> None:
        await peer.accept()
        await peer.send(frame(2, b"x" * 100))
        codes.append(await peer.read_close())

    script = Script(too_big)
    url = await raw_server(script)
    with pytest.raises(MessageTooBig) as info:
        await run_reconnecting(url, first_message, retry=BOUNDED, max_message_size=10)
    assert info.value.code == 1009
    assert codes == [1009]  # the client said why it failed the connection
    assert script.connections == 1


async def test_mixed_group_from_the_handler_leaves_unchanged(raw_server: RawServer) -> None:
    script = Script(accept_then("hello"))
    url = await raw_server(script)
    group: ExceptionGroup[Exception] | None = None

    async def handler(ws: MessageWebSocket) -> None:
        nonlocal group
        try:
            async for _ in ws:
                pass
        except ConnectionClosed as lost:
            group = ExceptionGroup("handler tasks", [lost, KeyError("bug")])
            raise group from None

    with pytest.raises(ExceptionGroup) as info:
        await run_reconnecting(url, handler, retry=BOUNDED)
    assert info.value is group  # not judged as a closure: it holds a bug
    assert script.connections == 1


async def test_401_is_not_retried(raw_server: RawServer, caplog: pytest.LogCaptureFixture) -> None:
    script = Script(reject("401 Unauthorized", 'WWW-Authenticate: Bearer realm="feed"'))
    url = await raw_server(script)
    caplog.set_level(logging.INFO, logger="trio_mws")
    with pytest.raises(HandshakeError) as info:
        await run_reconnecting(url, first_message, retry=BOUNDED)
    assert info.value.status_code == 401
    assert info.value.status is WebErrorStatus.UNAUTHORIZED
    assert script.connections == 1
    assert not [r for r in caplog.records if r.getMessage().startswith("reconnecting")]
    assert any("not reconnecting" in r.getMessage() for r in caplog.records)


async def test_certificate_failure_is_not_retried(nursery: trio.Nursery) -> None:
    ca = trustme.CA()  # the client does not trust it
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    tcp_connections = 0

    async def tls_peer(tcp: trio.SocketStream) -> None:
        nonlocal tcp_connections
        tcp_connections += 1
        stream = trio.SSLStream(tcp, context, server_side=True)
        try:
            await stream.do_handshake()
            await RawPeer(stream).accept()  # type: ignore[arg-type]
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, tls_peer, listeners)
    with pytest.raises(CertificateError) as info:
        await run_reconnecting(f"wss://127.0.0.1:{port}/", first_message, retry=BOUNDED)
    assert info.value.status is WebErrorStatus.CERTIFICATE_IS_INVALID
    assert tcp_connections == 1


@pytest.mark.parametrize("code", [1000, 1012])
async def test_server_close_code_decides(
    raw_server: RawServer, autojump_clock: trio.abc.Clock, code: int
) -> None:
    closes: list[int | None] = []
    script = Script(accept_then("bye", close_code=code), serve_until_client_closes(closes))
    url = await raw_server(script)
    seen: list[str] = []

    async def handler(ws: MessageWebSocket) -> None:
        async for event in ws:  # ends normally after the server's clean close
            seen.append(event.text)
            if event.text == "ready":
                return

    if code == 1000:  # a normal close is final: the loop ends with it
        with pytest.raises(ConnectionClosed) as info:
            await run_reconnecting(url, handler, retry=BOUNDED)
        assert info.value.code == 1000
        assert info.value.status is WebErrorStatus.DISCONNECTED
        assert seen == ["bye"]
        assert script.connections == 1
    else:  # service restart: come back
        await run_reconnecting(url, handler)
        assert seen == ["bye", "ready"]
        assert script.connections == 2
        assert closes == [1000]


async def test_max_attempts_counts_the_first(
    raw_server: RawServer, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(reject("502 Bad Gateway"))
    url = await raw_server(script)
    with pytest.raises(HandshakeError) as info:
        await run_reconnecting(url, first_message, retry=RetryPolicy(max_attempts=3))
    assert info.value.status is WebErrorStatus.BAD_GATEWAY
    assert script.connections == 3
    assert any("giving up" in r.getMessage() for r in caplog.records)


async def test_max_elapsed_bounds_when_attempts_start(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    script = Script(reject("500 Internal Server Error"))
    url = await raw_server(script)
    policy = RetryPolicy(initial_delay=1.0, multiplier=1.0, max_elapsed=10.0, rng=UpperBound())
    start = trio.current_time()
    with pytest.raises(HandshakeError) as info:
        await run_reconnecting(url, first_message, retry=policy)
    assert info.value.status is WebErrorStatus.INTERNAL_SERVER_ERROR
    # Attempts at 0, 1, ..., 10 s; one at 11 s would start after max_elapsed.
    assert script.arrived == [start + n for n in range(11)]
    assert trio.current_time() - start == 10.0


@pytest.mark.parametrize(("lived", "next_wait"), [(100.0, 1.0), (10.0, 4.0)])
async def test_attempts_reset_after_a_long_lived_connection(
    raw_server: RawServer, autojump_clock: trio.abc.Clock, lived: float, next_wait: float
) -> None:
    script = Script(
        reject("503 Service Unavailable"),  # waits 1 s
        reject("503 Service Unavailable"),  # waits 2 s
        accept_then(hold=lived),  # then dropped: waits 1 s if it lived 60 s, else 4 s
        serve_until_client_closes([]),
    )
    url = await raw_server(script)

    async def handler(ws: MessageWebSocket) -> None:
        async for event in ws:
            if event.text == "ready":
                return

    policy = RetryPolicy(reset_after=60.0, rng=UpperBound())
    await run_reconnecting(url, handler, retry=policy, ping_interval=None)
    waits = script.waits()
    assert waits == pytest.approx([1.0, 2.0, next_wait])


async def test_cancelled_during_backoff(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    script = Script(reject("503 Service Unavailable", "Retry-After: 30"))
    url = await raw_server(script)
    start = trio.current_time()
    with trio.move_on_after(10) as scope:
        await run_reconnecting(url, first_message)
    assert scope.cancelled_caught
    assert trio.current_time() - start == 10.0  # not 30: the sleep itself was cancelled
    assert script.connections == 1


async def test_cancelled_in_the_handler(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    script = Script(accept_then(hold=math.inf))

    async def handler(ws: MessageWebSocket) -> None:
        await trio.sleep_forever()

    url = await raw_server(script)
    with trio.move_on_after(5) as scope:
        await run_reconnecting(url, handler)
    assert scope.cancelled_caught
    assert script.connections == 1


async def test_other_handler_exceptions_propagate_after_1011(raw_server: RawServer) -> None:
    closes: list[int | None] = []
    script = Script(serve_until_client_closes(closes))
    url = await raw_server(script)
    failure = KeyError("bug in the handler")

    async def handler(ws: MessageWebSocket) -> None:
        await ws.receive()
        raise failure

    with pytest.raises(KeyError) as info:
        await run_reconnecting(url, handler, retry=BOUNDED)
    assert info.value is failure
    assert closes == [1011]
    assert script.connections == 1


async def test_websocket_error_while_open_is_the_handlers_own(raw_server: RawServer) -> None:
    """A WebSocketError raised while our connection is fine (another socket's, say) is not
    a closure of this connection: it propagates, after a 1011 close, without a retry."""
    closes: list[int | None] = []
    script = Script(serve_until_client_closes(closes))
    url = await raw_server(script)
    other = ConnectError("another service is down", WebErrorStatus.CANNOT_CONNECT)

    async def handler(ws: MessageWebSocket) -> None:
        await ws.receive()
        raise other

    with pytest.raises(ConnectError) as info:
        await run_reconnecting(url, handler, retry=BOUNDED)
    assert info.value is other
    assert closes == [1011]
    assert script.connections == 1


async def test_handler_that_closes_itself_is_done(raw_server: RawServer) -> None:
    closes: list[int | None] = []
    script = Script(serve_until_client_closes(closes))
    url = await raw_server(script)

    async def handler(ws: MessageWebSocket) -> None:
        await ws.receive()
        await ws.close(4000, "done for today")

    await run_reconnecting(url, handler, retry=BOUNDED)
    assert closes == [4000]
    assert script.connections == 1


async def test_handler_close_that_times_out_is_still_done(
    raw_server: RawServer, autojump_clock: trio.abc.Clock
) -> None:
    """The server never answers the handler's close: the close times out and aborts, which
    looks like a lost connection from outside — but the handler asked to stop."""
    script = Script(accept_then("ready", hold=math.inf))
    url = await raw_server(script)

    async def handler(ws: MessageWebSocket) -> None:
        await ws.receive()
        await ws.close(1000)

    start = trio.current_time()
    await run_reconnecting(url, handler, retry=BOUNDED, close_timeout=3.0)
    assert trio.current_time() - start == 3.0
    assert script.connections == 1


async def test_control_is_copied_and_used(raw_server: RawServer) -> None:
    agents: list[str | None] = []

    async def step(peer: RawPeer) -> None:
        await peer.accept()
        agents.append(peer.request_header("User-Agent"))
        await finish_close(peer)

    url = await raw_server(Script(step))
    control = trio_mws.MessageWebSocketControl(user_agent="feed-reader/1")

    async def handler(ws: MessageWebSocket) -> None:
        assert ws.control is not control
        assert ws.control.user_agent == "feed-reader/1"

    await run_reconnecting(url, handler, control=control)
    assert agents == ["feed-reader/1"]
    control.user_agent = "still settable"  # the caller's control was never frozen


async def test_overridden_policy(raw_server: RawServer, autojump_clock: trio.abc.Clock) -> None:
    class RetryUnauthorized(RetryPolicy):
        def should_retry(self, exc: BaseException) -> bool:
            return isinstance(exc, HandshakeError) and exc.status_code == 401

        def next_delay(self, attempt: int, exc: BaseException) -> float:
            return 3.0 * attempt

    script = Script(reject("401 Unauthorized"), reject("401 Unauthorized"), accept_then())
    url = await raw_server(script)

    async def handler(ws: MessageWebSocket) -> None:
        pass

    await run_reconnecting(url, handler, retry=RetryUnauthorized())
    waits = script.waits()
    assert waits == pytest.approx([3.0, 6.0])


async def test_overridden_next_delay_must_be_sane(raw_server: RawServer) -> None:
    class Broken(RetryPolicy):
        def next_delay(self, attempt: int, exc: BaseException) -> float:
            return -1.0

    url = await raw_server(Script(reject("503 Service Unavailable")))
    with pytest.raises(ValueError, match="next_delay"):
        await run_reconnecting(url, first_message, retry=Broken())


async def test_bad_arguments_fail_before_any_io() -> None:
    with pytest.raises(ValueError, match="scheme"):
        await run_reconnecting("http://127.0.0.1:1/", first_message)
    with pytest.raises(TypeError, match="RetryPolicy"):
        await run_reconnecting("ws://127.0.0.1:1/", first_message, retry=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handler"):
        await run_reconnecting("ws://127.0.0.1:1/", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="either control"):
        await run_reconnecting(
            "ws://127.0.0.1:1/",
            first_message,
            control=trio_mws.MessageWebSocketControl(),
            ping_interval=5,
        )
    with pytest.raises(TypeError, match="unknown control field"):
        await run_reconnecting("ws://127.0.0.1:1/", first_message, ping_intervall=5)


# -- RetryPolicy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"initial_delay": -1}, ValueError),
        ({"initial_delay": "1"}, TypeError),
        ({"initial_delay": math.inf}, ValueError),
        ({"max_delay": math.nan}, ValueError),
        ({"multiplier": 0.5}, ValueError),
        ({"max_attempts": 0}, ValueError),
        ({"max_attempts": 2.0}, TypeError),
        ({"max_attempts": True}, TypeError),
        ({"max_elapsed": -0.1}, ValueError),
        ({"reset_after": None}, TypeError),
        ({"rng": 42}, TypeError),
    ],
)
def test_policy_validates_its_arguments(arguments: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        RetryPolicy(**arguments)  # type: ignore[arg-type]


def _handshake(code: int, *headers: tuple[str, str]) -> HandshakeError:
    from trio_mws.status import status_for_http_code

    return HandshakeError(
        f"HTTP {code}", status_for_http_code(code), status_code=code, headers=headers
    )


def _closed(code: int) -> ConnectionClosed:
    return ConnectionClosed("closed", WebErrorStatus.DISCONNECTED, code=code)


RETRIED: list[BaseException] = [
    *(
        ConnectError("network", status)
        for status in (
            WebErrorStatus.TIMEOUT,
            WebErrorStatus.CONNECTION_RESET,
            WebErrorStatus.CONNECTION_ABORTED,
            WebErrorStatus.DISCONNECTED,
            WebErrorStatus.CANNOT_CONNECT,
            WebErrorStatus.SERVER_UNREACHABLE,
            WebErrorStatus.HOST_NAME_NOT_RESOLVED,
        )
    ),
    *(_handshake(code) for code in (408, 429, 500, 502, 503, 504, 507, 599)),
    *(_closed(code) for code in (1001, 1006, 1011, 1012, 1013, 1014)),
    ConnectionClosed("lost", WebErrorStatus.CONNECTION_RESET),  # code 1006
]

FINAL: list[BaseException] = [
    CertificateError("untrusted", WebErrorStatus.CERTIFICATE_IS_INVALID),
    CertificateError("expired", WebErrorStatus.CERTIFICATE_EXPIRED),
    *(_handshake(code) for code in (400, 401, 403, 404, 407, 410, 418, 426, 451)),
    HandshakeError("loop", WebErrorStatus.REDIRECT_FAILED, status_code=302),
    HandshakeError("downgrade", WebErrorStatus.HTTPS_TO_HTTP_ON_REDIRECTION, status_code=301),
    HandshakeError(
        "bad accept", WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE, status_code=101
    ),
    HandshakeError("garbage", WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE),
    _handshake(301),
    MessageTooBig("big", WebErrorStatus.CONNECTION_ABORTED, code=1009),
    *(_closed(code) for code in (1000, 1002, 1003, 1005, 1007, 1008, 1010, 3000, 4000, 4999)),
    # The close code decides, not the status: a 1002 with a transient-looking status.
    ConnectionClosed("protocol error", WebErrorStatus.CONNECTION_ABORTED, code=1002),
    ValueError("a bug"),
    WebSocketError("unclassified"),
]


@pytest.mark.parametrize("exc", RETRIED, ids=repr)
def test_default_retries(exc: BaseException) -> None:
    assert RetryPolicy().should_retry(exc)


@pytest.mark.parametrize("exc", FINAL, ids=repr)
def test_default_does_not_retry(exc: BaseException) -> None:
    assert not RetryPolicy().should_retry(exc)


def test_delays_grow_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(initial_delay=1.0, multiplier=2.0, max_delay=60.0, rng=UpperBound())
    failure = _handshake(503)
    assert [policy.next_delay(n, failure) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    seeded = [RetryPolicy(rng=random.Random(7)).next_delay(5, failure) for _ in range(2)]
    assert seeded[0] == seeded[1]  # a seeded source gives reproducible delays
    spread = {RetryPolicy().next_delay(3, failure) for _ in range(50)}
    assert len(spread) > 40 and all(0.0 <= d <= 4.0 for d in spread)  # jittered, bounded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Thu, 01 Jan 2026 00:01:40 GMT", 100.0),
        ("Thu, 01 Jan 2026 00:01:40 -0000", 100.0),
        ("Wed, 31 Dec 2025 00:00:00 GMT", 0.0),  # in the past: now
        ("99999999999999999999", math.inf),  # bounded later by max_delay
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("٣", None),  # a non-ASCII digit
        ("Thu, 99 Foo 2026 25:61:61 GMT", None),
    ],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    now = 1767225600.0  # 2026-01-01 00:00:00 UTC
    assert parse_retry_after(value, now) == expected


def test_retry_after_only_on_429_and_503() -> None:
    policy = RetryPolicy(initial_delay=0.0, max_delay=100.0)
    header = ("Retry-After", "50")
    assert policy.next_delay(1, _handshake(503, header)) == 50.0
    assert policy.next_delay(1, _handshake(429, ("retry-after", "50"))) == 50.0
    assert policy.next_delay(1, _handshake(502, header)) == 0.0
    assert policy.next_delay(1, _handshake(503, ("Retry-After", "later"))) == 0.0


@settings(max_examples=300, deadline=None)
@given(
    attempt=st.integers(min_value=1, max_value=100_000),
    initial=st.floats(min_value=0.0, max_value=1e6),
    multiplier=st.floats(min_value=1.0, max_value=1e3),
    max_delay=st.floats(min_value=0.0, max_value=1e6),
    retry_after=st.one_of(st.none(), st.text(max_size=40), st.integers(0, 10**30).map(str)),
    status=st.sampled_from([429, 503, 500]),
    seed=st.integers(0, 2**32),
)
def test_next_delay_stays_in_bounds(
    attempt: int,
    initial: float,
    multiplier: float,
    max_delay: float,
    retry_after: str | None,
    status: int,
    seed: int,
) -> None:
    policy = RetryPolicy(
        initial_delay=initial, multiplier=multiplier, max_delay=max_delay, rng=random.Random(seed)
    )
    headers = [] if retry_after is None else [("Retry-After", retry_after)]
    delay = policy.next_delay(attempt, _handshake(status, *headers))
    assert 0.0 <= delay <= max_delay
    if retry_after is None or status == 500:
        try:
            bound = initial * multiplier ** (attempt - 1)
        except OverflowError:
            bound = math.inf
        assert delay <= bound


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=60))
def test_parse_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value, time.time())
    assert result is None or result >= 0.0


# -- the docs ---------------------------------------------------------------------------------


def test_docs_example_runs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    example = next(block for block in blocks if "__main__" in block)
    result = subprocess.run(
        [sys.executable, "-c", example],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == ["connection 1: echo 'hello 1'", "connection 2: echo 'hello 2'", "done"]
    assert "reconnecting to ws://127.0.0.1:" in result.stderr
