"""Client adapters: how each library connects, sends and receives.

Every adapter exposes the same small surface used by :mod:`bench.workloads`:

* ``runtime``: the event loop it runs on (:mod:`bench.runtime`: trio or asyncio);
* ``connect(endpoint)``: async context manager yielding a connection;
* ``bind(conn, size, text)``: ``(send, recv)`` callables. For the WebSocket libraries these are the
  library's own bound methods, so the timed loops add no wrapper call per message;
* ``receive_many(conn, count, size)``: receive ``count`` echoed messages (pipelined receiver);
* ``payload(message)``: the echoed payload, used once per workload to check the echo;
* ``aclose()``: release what the adapter shares between connections (aiohttp's session).

Settings, for fairness: keepalive pings disabled wherever the library has them, maximum
message size 2 MiB, no proxy look-up (loopback only), TLS trusting the bench CA, everything
else at the library's defaults. Compression (permessage-deflate, each library's default
parameters) is requested only for the compressed workload; elsewhere the servers accept no
extension.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import trio

from bench.runtime import ASYNCIO, TRIO, Runtime

MAX_MESSAGE_SIZE = 2 * 1024 * 1024

SendFn = Callable[[Any], Awaitable[Any]]
RecvFn = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect."""

    #: ``ws://``, ``wss://`` (WebSocket) or ``tcp://``, ``tls://`` (raw echo) URL.
    url: str
    #: Context trusting the bench CA for ``wss://`` and ``tls://``; None for plain TCP.
    ssl: ssl.SSLContext | None = None
    #: Whether to request permessage-deflate.
    compression: bool = False


class Client:
    """Base adapter; subclasses override ``connect`` and ``bind``, and where needed the rest."""

    #: Name used on the command line.
    key: str = ""
    #: Name shown in reports.
    label: str = ""
    #: Whether the client talks WebSocket (False: raw TCP/TLS echo).
    websocket: bool = True
    #: Whether the client can negotiate permessage-deflate.
    compression: bool = True
    #: The event loop the client runs on.
    runtime: Runtime = TRIO

    def connect(self, endpoint: Endpoint) -> AbstractAsyncContextManager[Any]:
        """Open a connection to ``endpoint``."""
        raise NotImplementedError

    def bind(self, conn: Any, size: int, text: bool) -> tuple[SendFn, RecvFn]:
        """Return ``(send, recv)`` for text (``str``) or binary messages of ``size`` bytes."""
        raise NotImplementedError

    async def receive_many(self, conn: Any, count: int, size: int) -> None:
        """Receive ``count`` echoed binary messages of ``size`` bytes."""
        _, recv = self.bind(conn, size, False)
        for _ in range(count):
            await recv()

    def payload(self, message: Any) -> bytes | str:
        """Return the payload of a received message."""
        return message  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Release resources shared between connections (nothing by default)."""


class TrioMwsClient(Client):
    """trio_mws (this project), whole-message receive mode (the default)."""

    key = "trio_mws"
    label = "trio_mws"

    def _options(self, endpoint: Endpoint) -> dict[str, Any]:
        return {
            "ping_interval": None,
            "max_message_size": MAX_MESSAGE_SIZE,
            "proxy": None,
            "ssl_context": endpoint.ssl,
            "compression": endpoint.compression,
        }

    def connect(self, endpoint: Endpoint) -> AbstractAsyncContextManager[Any]:
        import trio_mws

        return trio_mws.open_message_websocket(endpoint.url, **self._options(endpoint))

    def bind(self, conn: Any, size: int, text: bool) -> tuple[SendFn, RecvFn]:
        return conn.send, conn.receive

    def payload(self, message: Any) -> bytes | str:
        return message.data  # type: ignore[no-any-return]


class TrioMwsPartialClient(TrioMwsClient):
    """trio_mws in PARTIAL_MESSAGE receive mode; counts a message when it is complete."""

    key = "trio_mws_partial"
    label = "trio_mws (partial)"

    def _options(self, endpoint: Endpoint) -> dict[str, Any]:
        import trio_mws

        mode = trio_mws.MessageWebSocketReceiveMode.PARTIAL_MESSAGE
        return {**super()._options(endpoint), "receive_mode": mode}

    async def receive_many(self, conn: Any, count: int, size: int) -> None:
        receive = conn.receive
        done = 0
        while done < count:
            if (await receive()).is_message_complete:
                done += 1


class WebsocketsTrioClient(Client):
    """websockets' trio implementation (``websockets.trio.client.connect``)."""

    key = "websockets_trio"
    label = "websockets.trio"

    def connect(self, endpoint: Endpoint) -> AbstractAsyncContextManager[Any]:
        from websockets.trio.client import connect

        return connect(
            endpoint.url,
            ping_interval=None,
            max_size=MAX_MESSAGE_SIZE,
            proxy=None,
            ssl=endpoint.ssl,
            compression="deflate" if endpoint.compression else None,
        )

    def bind(self, conn: Any, size: int, text: bool) -> tuple[SendFn, RecvFn]:
        return conn.send, conn.recv


class WebsocketsAsyncioClient(Client):
    """websockets' asyncio implementation (``websockets.asyncio.client.connect``)."""

    key = "websockets_asyncio"
    label = "websockets asyncio"
    runtime = ASYNCIO

    def connect(self, endpoint: Endpoint) -> AbstractAsyncContextManager[Any]:
        from websockets.asyncio.client import connect

        return connect(
            endpoint.url,
            ping_interval=None,
            max_size=MAX_MESSAGE_SIZE,
            proxy=None,
            ssl=endpoint.ssl,
            compression="deflate" if endpoint.compression else None,
        )

    def bind(self, conn: Any, size: int, text: bool) -> tuple[SendFn, RecvFn]:
        return conn.send, conn.recv


class AiohttpClient(Client):
    """aiohttp's WebSocket client, all connections from one ``ClientSession`` (as users do).

    The session's connector has no connection limit (its default of 100 would hold back the
    memory workload's 1,000 connections) and ignores proxy settings (``trust_env=False``, the
    default).
    """

    key = "aiohttp"
    label = "aiohttp"
    runtime = ASYNCIO

    def __init__(self) -> None:
        self._session: Any = None

    @contextlib.asynccontextmanager
    async def connect(self, endpoint: Endpoint) -> AsyncIterator[Any]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        async with self._session.ws_connect(
            endpoint.url,
            heartbeat=None,
            max_msg_size=MAX_MESSAGE_SIZE,
            ssl=endpoint.ssl if endpoint.ssl is not None else True,
            compress=15 if endpoint.compression else 0,
        ) as ws:
            yield ws

    def bind(self, conn: Any, size: int, text: bool) -> tuple[SendFn, RecvFn]:
        return (conn.send_str if text else conn.send_bytes), conn.receive

    async def receive_many(self, conn: Any, count: int, size: int) -> None:
        import aiohttp

        receive = conn.receive
        binary = aiohttp.WSMsgType.BINARY
        for _ in range(count):
            # aiohttp reports a closed connection as a message: check, as an application would.
            message = await receive()
            if message.type is not binary:
                raise EOFError(f"aiohttp: unexpected {message.type!r} while receiving")

    def payload(self, message: Any) -> bytes | str:
        return message.data  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class TrioWebsocketClient(Client):
    """trio-websocket (``trio_websocket.open_websocket_url``); no keepalive, no compression."""

    key = "trio_websocket"
    label = "trio-websocket"
    compression = False

    def connect(self, endpoint: Endpoint) -> AbstractAsyncContextManager[Any]:
        from trio_websocket import open_websocket_url

        return open_websocket_url(
            endpoint.url, ssl_context=endpoint.ssl, max_message_size=MAX_MESSAGE_SIZE
        )

    def bind(self, conn: Any, size: int, text: bool) -> tuple[SendFn, RecvFn]:
        return conn.send_message, conn.get_message


class RawTcpClient(Client):
    """Raw trio TCP (or TLS) echo: one ``send_all`` per message, the ceiling for the others."""

    key = "raw"
    label = "raw trio TCP/TLS"
    websocket = False
    compression = False

    @contextlib.asynccontextmanager
    async def connect(self, endpoint: Endpoint) -> AsyncIterator[trio.abc.Stream]:
        parts = urlsplit(endpoint.url)
        assert parts.hostname is not None and parts.port is not None
        stream: trio.abc.Stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        try:
            if endpoint.ssl is not None:
                stream = trio.SSLStream(stream, endpoint.ssl, server_hostname=parts.hostname)
                await stream.do_handshake()
            yield stream
        finally:
            await trio.aclose_forcefully(stream)

    def bind(self, conn: Any, size: int, text: bool) -> tuple[SendFn, RecvFn]:
        # A byte stream has no message boundaries. The sequential workloads have one message
        # in flight at a time, so reading exactly ``size`` bytes is correct.
        stream: trio.abc.Stream = conn
        buffer = bytearray(size)
        view = memoryview(buffer)

        if isinstance(stream, trio.SocketStream):
            sock = stream.socket

            async def recv() -> bytearray:
                received = 0
                while received < size:
                    n = await sock.recv_into(view[received:])
                    if not n:
                        raise EOFError("echo server closed the connection")
                    received += n
                return buffer

        else:

            async def recv() -> bytearray:
                received = 0
                while received < size:
                    chunk = await stream.receive_some(size - received)
                    if not chunk:
                        raise EOFError("echo server closed the connection")
                    view[received : received + len(chunk)] = chunk
                    received += len(chunk)
                return buffer

        return stream.send_all, recv

    async def receive_many(self, conn: Any, count: int, size: int) -> None:
        stream: trio.abc.Stream = conn
        remaining = count * size
        while remaining > 0:
            n = len(await stream.receive_some())
            if not n:
                raise EOFError("echo server closed the connection")
            remaining -= n


CLIENTS: dict[str, Client] = {
    c.key: c
    for c in (
        TrioMwsClient(),
        TrioMwsPartialClient(),
        WebsocketsAsyncioClient(),
        AiohttpClient(),
        WebsocketsTrioClient(),
        TrioWebsocketClient(),
        RawTcpClient(),
    )
}
