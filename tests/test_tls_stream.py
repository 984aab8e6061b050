"""TlsStream, our TLS stream: against trio's server-side ``trio.SSLStream`` over real
sockets on 127.0.0.1, certificates from a trustme CA.

The servers are tasks of the test (``serve``): each accepts one connection, runs the TLS
handshake and hands the server-side stream to a handler.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import pytest
import trio
import trio.testing
import trustme

import trio_mws
from trio_mws import MessageWebSocketReceiveMode, WebErrorStatus
from trio_mws.status import classify
from trio_mws.tls_stream import CLOSE_NOTIFY_TIMEOUT, TlsStream

from .mws_helpers import OP_BINARY, OP_TEXT
from .rawserver import RawPeer, frame

ServerHandler = Callable[[trio.SSLStream[trio.SocketStream]], Awaitable[None]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@asynccontextmanager
async def serve(
    context: ssl.SSLContext, handler: ServerHandler, *, handshake: bool = True
) -> AsyncIterator[trio.SocketStream]:
    """Run ``handler`` on the server side of one TLS connection; yield the client's TCP
    stream. The server's task is cancelled when the block ends."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def accept() -> None:
        tcp = await listeners[0].accept()
        stream = trio.SSLStream(tcp, context, server_side=True)
        async with stream:
            if handshake:
                await stream.do_handshake()
            await handler(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            yield tcp
        finally:
            nursery.cancel_scope.cancel()  # the body too: close synchronously
            tcp.socket.close()
            listeners[0].socket.close()


async def echo(stream: trio.abc.Stream) -> None:
    while data := await stream.receive_some():
        await stream.send_all(data)


async def receive_exactly(stream: trio.abc.Stream, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        data = await stream.receive_some()
        assert data, f"EOF after {len(received)} of {size} bytes"
        received += data
    return bytes(received)


async def test_handshake_exposes_the_connection(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with serve(server_context, echo) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        await stream.do_handshake()  # a second call does nothing
        assert stream.ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        assert stream.ssl_object.getpeercert(binary_form=True)
        assert stream.transport_stream is tcp


async def test_untrusted_server_is_a_broken_resource_from_the_verification_error(
    server_context: ssl.SSLContext,
) -> None:
    alerted: list[BaseException] = []

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:  # the client's alert
            alerted.append(exc)
        await trio.sleep_forever()

    async with serve(server_context, handler, handshake=False) as tcp:
        stream = TlsStream(tcp, ssl.create_default_context(), server_hostname="127.0.0.1")
        with pytest.raises(trio.BrokenResourceError) as info:
            await stream.do_handshake()
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        with pytest.raises(trio.BrokenResourceError):
            await stream.send_all(b"x")
        await trio.testing.wait_all_tasks_blocked()
        assert "UNKNOWN_CA" in str(alerted[0].__cause__).upper()  # the alert reached it


@pytest.mark.parametrize("size", [1, 1000, 16 * 1024 + 1, 1024 * 1024, 16 * 1024 * 1024])
async def test_echo(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, size: int
) -> None:
    payload = os.urandom(size)
    async with serve(server_context, echo) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.send_all, payload)
            assert await receive_exactly(stream, size) == payload
        await stream.aclose()


async def test_small_records_already_received_come_as_one_piece(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Issue 7 defect 11's mechanism: 1,000 records of 64 B sent before the client reads
    are one ``receive_some`` (``trio.SSLStream`` returns one record per call)."""
    sent = trio.Event()

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        for index in range(1000):
            await stream.send_all(index.to_bytes(2, "big") * 32)  # one record each
        sent.set()
        await trio.sleep_forever()

    async with serve(server_context, handler) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        await sent.wait()  # loopback: what was sent is in the client's socket now
        first = await stream.receive_some()
        assert len(first) > 16 * 1024
        rest = await receive_exactly(stream, 64_000 - len(first))
        expected = b"".join(index.to_bytes(2, "big") * 32 for index in range(1000))
        assert first + rest == expected


async def test_max_bytes_bounds_a_piece_and_loses_nothing(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    payload = os.urandom(100_000)
    async with serve(server_context, echo) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.send_all(payload)
        received = bytearray()
        while len(received) < len(payload):
            piece = await stream.receive_some(1000)
            assert 0 < len(piece) <= 1000
            received += piece
        assert received == payload
        with pytest.raises(ValueError, match="max_bytes"):
            await stream.receive_some(0)


async def test_close_notify_is_a_clean_eof_after_the_data(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await stream.send_all(b"last words")
        await stream.aclose()  # close_notify, then the TCP close

    async with serve(server_context, handler) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        assert await receive_exactly(stream, 10) == b"last words"
        assert await stream.receive_some() == b""
        assert await stream.receive_some() == b""


async def test_eof_without_close_notify_is_disconnected(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await stream.send_all(b"last words")
        await stream.transport_stream.aclose()  # TCP close, no close_notify

    async with serve(server_context, handler) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        assert await receive_exactly(stream, 10) == b"last words"
        with pytest.raises(trio.BrokenResourceError) as info:
            await stream.receive_some()
        assert isinstance(info.value.__cause__, ssl.SSLEOFError)
        assert classify(info.value) is WebErrorStatus.DISCONNECTED
        with pytest.raises(trio.BrokenResourceError):
            await stream.receive_some()


async def test_aclose_sends_close_notify(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    seen: list[bytes] = []
    done = trio.Event()

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        seen.append(await receive_exactly(stream, 5))
        seen.append(bytes(await stream.receive_some()))  # trio: b"" only after close_notify
        done.set()

    async with serve(server_context, handler) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.send_all(b"hello")
        await stream.aclose()
        await done.wait()
        assert seen == [b"hello", b""]
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some()
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"x")


async def test_tls_inside_tls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """An HTTPS proxy's shape: the inner TLS session runs over the outer one."""

    async def handler(outer: trio.SSLStream[trio.SocketStream]) -> None:
        inner = trio.SSLStream(outer, server_context, server_side=True)
        await echo(inner)

    payload = os.urandom(3 * 1024 * 1024 + 5)
    async with serve(server_context, handler) as tcp:
        outer = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        inner = TlsStream(outer, client_context, server_hostname="127.0.0.1")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(inner.send_all, payload)
            assert await receive_exactly(inner, len(payload)) == payload
        assert inner.ssl_object.getpeercert(binary_form=True)
        await inner.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await outer.receive_some()


async def test_concurrent_send_and_receive_with_tls13_session_tickets(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """The server's session tickets arrive after the handshake, while the client sends
    and receives at once; every byte comes back in order."""
    assert server_context.num_tickets > 0
    chunks = [os.urandom(1 + index * 997 % 70_000) for index in range(200)]
    total = sum(map(len, chunks))
    async with serve(server_context, echo) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        assert stream.ssl_object.version() == "TLSv1.3"

        async def send() -> None:
            for chunk in chunks:
                await stream.send_all(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            assert await receive_exactly(stream, total) == b"".join(chunks)
        assert stream.ssl_object.session is not None  # the tickets were processed


async def test_concurrent_receives_or_sends_are_busy(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with serve(server_context, echo) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.receive_some)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await stream.receive_some()
            nursery.cancel_scope.cancel()
        blocked = 64 * 1024 * 1024  # more than the sockets buffer: the send blocks

        async def send_much() -> None:
            await stream.send_all(b"x" * blocked)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_much)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await stream.send_all(b"y")
            nursery.cancel_scope.cancel()


async def test_cancelled_receive_loses_nothing(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, autojump_clock: object
) -> None:
    release = trio.Event()

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await release.wait()
        await stream.send_all(b"after the cancel")
        await trio.sleep_forever()

    async with serve(server_context, handler) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        with trio.move_on_after(5) as scope:
            await stream.receive_some()
        assert scope.cancelled_caught
        release.set()
        assert await receive_exactly(stream, 16) == b"after the cancel"


async def test_cancelled_handshake_and_send(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, autojump_clock: object
) -> None:
    async def silent(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await trio.sleep_forever()  # neither answers the handshake nor reads

    async with serve(server_context, silent, handshake=False) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        with trio.move_on_after(10) as scope:
            await stream.do_handshake()
        assert scope.cancelled_caught
        await stream.aclose()

    async with serve(server_context, silent) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        with trio.move_on_after(10) as scope:
            await stream.send_all(b"x" * 64 * 1024 * 1024)  # the server never reads
        assert scope.cancelled_caught
        # Part of a record may be on the wire: the stream is broken, and says so.
        with pytest.raises(trio.BrokenResourceError):
            await stream.send_all(b"more")
        with trio.fail_after(5):
            await stream.aclose()  # no close_notify on a broken stream: it just closes


class StallingStream(trio.abc.Stream):
    """A TCP stream whose sends hang once ``stalled`` is set: a peer that stopped reading,
    without depending on how much the socket buffers hold."""

    def __init__(self, tcp: trio.SocketStream) -> None:
        self.tcp = tcp
        self.stalled = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.stalled:
            await trio.sleep_forever()
        await self.tcp.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.tcp.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self.tcp.receive_some(max_bytes))

    async def aclose(self) -> None:
        await self.tcp.aclose()


async def test_aclose_is_bounded_when_the_peer_does_not_read(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, autojump_clock: object
) -> None:
    async with serve(server_context, echo) as tcp:
        transport = StallingStream(tcp)
        stream = TlsStream(transport, client_context, server_hostname="127.0.0.1")
        await stream.send_all(b"ping")
        assert await receive_exactly(stream, 4) == b"ping"
        transport.stalled = True
        start = trio.current_time()
        await stream.aclose()
        assert trio.current_time() - start == pytest.approx(CLOSE_NOTIFY_TIMEOUT)
        assert tcp.socket.fileno() == -1  # the transport was closed all the same
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some()


async def test_aclose_while_another_task_sends(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def silent(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await trio.sleep_forever()

    async with serve(server_context, silent) as tcp:
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        failures: list[BaseException] = []

        async def send_much() -> None:
            try:
                await stream.send_all(b"x" * 64 * 1024 * 1024)  # blocks: nobody reads
            except trio.ClosedResourceError as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_much)
            await trio.testing.wait_all_tasks_blocked()
            with trio.fail_after(5):
                await stream.aclose()
        assert len(failures) == 1


# -- through MessageWebSocket (wss://) -------------------------------------------------------


class HoldingStream(trio.abc.Stream):
    """The server's TCP stream; while ``held``, sends are kept and :meth:`release` writes
    them with one call: TLS records made one by one reach the client as one burst."""

    def __init__(self, tcp: trio.SocketStream) -> None:
        self.tcp = tcp
        self.held: list[bytes] | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.held is not None:
            self.held.append(bytes(data))
            await trio.lowlevel.checkpoint()
        else:
            await self.tcp.send_all(data)

    async def release(self) -> None:
        held, self.held = self.held or [], None
        await self.tcp.send_all(b"".join(held))

    async def wait_send_all_might_not_block(self) -> None:
        await self.tcp.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self.tcp.receive_some(max_bytes))

    async def aclose(self) -> None:
        await self.tcp.aclose()


async def serve_wss(
    context: ssl.SSLContext,
    handler: Callable[[RawPeer, HoldingStream], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A scripted wss:// server (one handler per connection) reporting its URL."""

    async def run(tcp: trio.SocketStream) -> None:
        holding = HoldingStream(tcp)
        stream = trio.SSLStream(holding, context, server_side=True)
        try:
            await stream.do_handshake()
            await handler(RawPeer(cast(trio.SocketStream, stream)), holding)
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, run, listeners)
        task_status.started(f"wss://127.0.0.1:{listeners[0].socket.getsockname()[1]}/")


async def test_partial_pieces_over_tls_are_not_one_record_each(
    nursery: trio.Nursery, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Issue 7 defect 11: a 1 MiB message sent as 4 KiB TLS records (nginx's default
    buffer) came as ~256 PARTIAL_MESSAGE pieces of at most 4 KiB; what is already received
    is now decrypted and delivered in pieces larger than one record."""
    payload = os.urandom(1024 * 1024)
    wire = frame(OP_BINARY, payload)
    done = trio.Event()

    async def handler(peer: RawPeer, holding: HoldingStream) -> None:
        await peer.accept()
        holding.held = []
        for start in range(0, len(wire), 4096):
            await peer.send(wire[start : start + 4096])  # one TLS record each
        await holding.release()
        await done.wait()

    url = await nursery.start(serve_wss, server_context, handler)
    async with trio_mws.open_message_websocket(
        url,
        receive_mode=MessageWebSocketReceiveMode.PARTIAL_MESSAGE,
        ping_interval=None,
        ssl_context=client_context,
    ) as ws:
        events = [await ws.receive()]
        while not events[-1].is_message_complete:
            events.append(await ws.receive())
        done.set()
        assert b"".join(event.data for event in events) == payload
        assert max(len(event.data) for event in events) > 16 * 1024
        assert len(events) < 100


async def test_wss_server_gone_without_close_notify_is_disconnected(
    nursery: trio.Nursery, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """A server that drops TCP with neither a close frame nor close_notify: DISCONNECTED,
    as over plain TCP (it was CONNECTION_ABORTED)."""

    async def handler(peer: RawPeer, holding: HoldingStream) -> None:
        await peer.accept()
        await peer.send(frame(OP_TEXT, b"bye"))
        await holding.tcp.aclose()

    url = await nursery.start(serve_wss, server_context, handler)
    async with trio_mws.open_message_websocket(
        url, ping_interval=None, ssl_context=client_context
    ) as ws:
        assert (await ws.receive()).text == "bye"
        with pytest.raises(trio_mws.ConnectionClosed) as info:
            await ws.receive()
        assert info.value.status is WebErrorStatus.DISCONNECTED


# -- TLS 1.3 KeyUpdate, from OpenSSL's own server ------------------------------------------


class OpenSslServer:
    """``openssl s_server`` on 127.0.0.1 (TLS 1.3, ``-msg``): a line written to its stdin is
    sent to the client, ``K`` sends a KeyUpdate that requests ours; its stdout (what the
    client sent, and every TLS message) is collected in ``output``."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = bytearray()
        self._grew = trio.Event()

    async def collect(self) -> None:
        assert self.process.stdout is not None
        while data := await self.process.stdout.receive_some():
            self.output += data
            self._grew.set()
            self._grew = trio.Event()

    async def wait_for(self, text: bytes) -> None:
        with trio.fail_after(20):
            while text not in self.output:
                await self._grew.wait()

    async def command(self, line: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line + b"\n")


@asynccontextmanager
async def openssl_server(ca: trustme.CA, tmp_path: Path) -> AsyncIterator[OpenSslServer]:
    openssl = shutil.which("openssl")
    assert openssl, "the KeyUpdate tests need the openssl command"
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    command = [openssl, "s_server", "-accept", "127.0.0.1:0", "-cert", str(pem)]
    process = await trio.lowlevel.open_process(
        [*command, "-tls1_3", "-msg", "-ign_eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = OpenSslServer(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.collect)
            await server.wait_for(b"ACCEPT 127.0.0.1:")
            await server.wait_for(b"\n")
            yield server
            nursery.cancel_scope.cancel()
    finally:
        process.kill()
        await process.wait()


def accepted_port(server: OpenSslServer) -> int:
    return int(bytes(server.output).split(b"ACCEPT 127.0.0.1:")[1].split()[0])


# How `openssl s_server -msg` shows the KeyUpdate it received (the last byte: 00, not
# requested) and the one it sent (01: update requested).
CLIENT_KEY_UPDATE = b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate\n    18 00 00 01 00"
SERVER_KEY_UPDATE = b">>> TLS 1.3, Handshake [length 0005], KeyUpdate\n    18 00 00 01 01"


async def test_a_requested_key_update_is_answered_before_the_next_data(
    ca: trustme.CA, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """OpenSSL answers a KeyUpdate that asks for ours with the next write (RFC 8446
    4.6.3: before the next application data)."""
    async with openssl_server(ca, tmp_path) as server:
        tcp = await trio.open_tcp_stream("127.0.0.1", accepted_port(server))
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        await server.command(b"K")
        await server.wait_for(SERVER_KEY_UPDATE)  # s_server reads a command line alone
        await server.command(b"hello")
        assert await receive_exactly(stream, 6) == b"hello\n"
        await stream.send_all(b"after the update\n")
        await server.wait_for(b"after the update")
        assert 0 < server.output.find(CLIENT_KEY_UPDATE) < server.output.find(b"after the")
        await stream.aclose()


async def test_key_update_while_another_task_sends(
    ca: trustme.CA, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """The reader's KeyUpdate answer goes out in order with a sender's records: the server
    decrypts every line sent before and after it."""
    async with openssl_server(ca, tmp_path) as server:
        tcp = await trio.open_tcp_stream("127.0.0.1", accepted_port(server))
        stream = TlsStream(tcp, client_context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        halfway = trio.Event()

        async def send_lines() -> None:
            for index in range(2000):
                await stream.send_all(b"line%05d\n" % index + b"." * 100)
                if index == 1000:
                    halfway.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_lines)
            await halfway.wait()
            await server.command(b"K")
            await server.wait_for(SERVER_KEY_UPDATE)  # s_server reads a command line alone
            await server.command(b"hello")
            assert await receive_exactly(stream, 6) == b"hello\n"
        await server.wait_for(b"line01999")
        assert CLIENT_KEY_UPDATE in server.output
        assert b"bad record mac" not in server.output.lower()
        await stream.aclose()


async def test_the_reader_sends_what_reading_produced(ca: trustme.CA) -> None:
    """TLS 1.3 post-handshake authentication: the server asks for the client's certificate
    after the handshake; reading that request makes OpenSSL write the certificate, which
    ``receive_some`` sends although the client never calls ``send_all``."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_OPTIONAL  # asked after the handshake, with:
    server_context.post_handshake_auth = True
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    ca.issue_cert("client@example.org").configure_cert(client_context)
    client_context.post_handshake_auth = True
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[object] = []

    def serve_one() -> None:
        connection, _ = listener.accept()
        with server_context.wrap_socket(connection, server_side=True) as tls:
            tls.verify_client_post_handshake()
            tls.sendall(b"who are you?")  # the certificate request goes out with it
            tls.settimeout(0.05)
            deadline = time.monotonic() + 20
            while not tls.getpeercert() and time.monotonic() < deadline:
                try:
                    tls.recv(1)  # processes the client's answer; no data comes
                except TimeoutError:
                    pass
            seen.append(tls.getpeercert())

    with listener:
        thread = threading.Thread(target=serve_one)
        thread.start()
        try:
            tcp = await trio.open_tcp_stream("127.0.0.1", listener.getsockname()[1])
            async with TlsStream(tcp, client_context, server_hostname="127.0.0.1") as stream:
                assert await receive_exactly(stream, 12) == b"who are you?"
                await trio.to_thread.run_sync(thread.join, 30)
        finally:
            thread.join(30)
    assert seen and seen[0], "the server never received the client's certificate"


async def test_wss_handshake_honours_the_connect_timeout(
    nursery: trio.Nursery, client_context: ssl.SSLContext, autojump_clock: object
) -> None:
    """A server that accepts TCP and never answers the ClientHello: TIMEOUT after
    ``connect_timeout``, and the socket is closed."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    accepted: list[trio.SocketStream] = []

    async def silent(tcp: trio.SocketStream) -> None:
        async with tcp:
            accepted.append(tcp)
            await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, silent, listeners)
    url = f"wss://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
    start = trio.current_time()
    with pytest.raises(trio_mws.ConnectError) as info:
        async with trio_mws.open_message_websocket(
            url, connect_timeout=7, ssl_context=client_context
        ):
            pass
    assert info.value.status is WebErrorStatus.TIMEOUT
    assert trio.current_time() - start == pytest.approx(7)
    with trio.fail_after(5):  # the ClientHello, then the client's close
        while await accepted[0].receive_some():
            pass
