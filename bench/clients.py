"""Client adapters: how each library connects, sends and receives.

Every adapter exposes the same small surface used by :mod:`bench.workloads`:

* ``connect(url)``: async context manager yielding a connection;
* ``bind(conn, size)``: ``(send, recv)`` callables for messages of ``size`` bytes. For the
  WebSocket libraries these are the library's own bound methods, so the timed loops add no
  wrapper call per message;
* ``receive_many(conn, count, size)``: receive ``count`` echoed messages (pipelined receiver);
* ``payload(message)``: the echoed payload, used once per workload to check the echo.

Settings, for fairness: keepalive pings disabled wherever the library has them, maximum
message size 2 MiB, no proxy look-up (loopback only), everything else at the library's
defaults. (No client negotiates compression: the echo server accepts no extension.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit

import trio

MAX_MESSAGE_SIZE = 2 * 1024 * 1024

SendFn = Callable[[Any], Awaitable[Any]]
RecvFn = Callable[[], Awaitable[Any]]


class Client:
    """Base adapter; subclasses override ``connect`` and, where needed, the rest."""

    #: Name used on the command line.
    key: str = ""
    #: Name shown in reports.
    label: str = ""
    #: Whether the client talks WebSocket (False: raw TCP echo).
    websocket: bool = True

    def connect(self, url: str) -> AbstractAsyncContextManager[Any]:
        """Open a connection to ``url``."""
        raise NotImplementedError

    def bind(self, conn: Any, size: int) -> tuple[SendFn, RecvFn]:
        """Return ``(send, recv)`` for messages of ``size`` bytes on ``conn``."""
        raise NotImplementedError

    async def receive_many(self, conn: Any, count: int, size: int) -> None:
        """Receive ``count`` echoed messages of ``size`` bytes."""
        _, recv = self.bind(conn, size)
        for _ in range(count):
            await recv()

    def payload(self, message: Any) -> bytes | str:
        """Return the payload of a received message."""
        return message  # type: ignore[no-any-return]


class TrioMwsClient(Client):
    """trio_mws (this project), whole-message receive mode (the default)."""

    key = "trio_mws"
    label = "trio_mws"

    def _options(self) -> dict[str, Any]:
        return {"ping_interval": None, "max_message_size": MAX_MESSAGE_SIZE, "proxy": None}

    def connect(self, url: str) -> AbstractAsyncContextManager[Any]:
        import trio_mws

        return trio_mws.open_message_websocket(url, **self._options())

    def bind(self, conn: Any, size: int) -> tuple[SendFn, RecvFn]:
        return conn.send, conn.receive

    def payload(self, message: Any) -> bytes | str:
        return message.data  # type: ignore[no-any-return]


class TrioMwsPartialClient(TrioMwsClient):
    """trio_mws in PARTIAL_MESSAGE receive mode; counts a message when it is complete."""

    key = "trio_mws_partial"
    label = "trio_mws (partial)"

    def _options(self) -> dict[str, Any]:
        import trio_mws

        mode = trio_mws.MessageWebSocketReceiveMode.PARTIAL_MESSAGE
        return {**super()._options(), "receive_mode": mode}

    async def receive_many(self, conn: Any, count: int, size: int) -> None:
        receive = conn.receive
        done = 0
        while done < count:
            if (await receive()).is_message_complete:
                done += 1


class WebsocketsTrioClient(Client):
    """websockets' trio implementation (``websockets.trio.client.connect``)."""

    key = "websockets"
    label = "websockets.trio"

    def connect(self, url: str) -> AbstractAsyncContextManager[Any]:
        from websockets.trio.client import connect

        return connect(url, ping_interval=None, max_size=MAX_MESSAGE_SIZE, proxy=None)

    def bind(self, conn: Any, size: int) -> tuple[SendFn, RecvFn]:
        return conn.send, conn.recv


class TrioWebsocketClient(Client):
    """trio-websocket (``trio_websocket.open_websocket_url``); it has no keepalive pings."""

    key = "trio_websocket"
    label = "trio-websocket"

    def connect(self, url: str) -> AbstractAsyncContextManager[Any]:
        from trio_websocket import open_websocket_url

        return open_websocket_url(url, max_message_size=MAX_MESSAGE_SIZE)

    def bind(self, conn: Any, size: int) -> tuple[SendFn, RecvFn]:
        return conn.send_message, conn.get_message


class RawTcpClient(Client):
    """Raw trio TCP echo: one ``send_all`` per message, the ceiling for the WebSocket clients."""

    key = "raw_tcp"
    label = "raw trio TCP"
    websocket = False

    @contextlib.asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[trio.SocketStream]:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        try:
            yield stream
        finally:
            await stream.aclose()

    def bind(self, conn: Any, size: int) -> tuple[SendFn, RecvFn]:
        stream: trio.SocketStream = conn
        sock = stream.socket
        buffer = bytearray(size)
        view = memoryview(buffer)

        async def recv() -> bytearray:
            # A byte stream has no message boundaries. The sequential workloads have one
            # message in flight at a time, so reading exactly ``size`` bytes is correct.
            received = 0
            while received < size:
                n = await sock.recv_into(view[received:])
                if not n:
                    raise EOFError("echo server closed the connection")
                received += n
            return buffer

        return stream.send_all, recv

    async def receive_many(self, conn: Any, count: int, size: int) -> None:
        stream: trio.SocketStream = conn
        remaining = count * size
        while remaining > 0:
            n = len(await stream.receive_some())
            if not n:
                raise EOFError("echo server closed the connection")
            remaining -= n

    def payload(self, message: Any) -> bytes | str:
        return message  # type: ignore[no-any-return]


CLIENTS: dict[str, Client] = {
    c.key: c
    for c in (
        TrioMwsClient(),
        TrioMwsPartialClient(),
        WebsocketsTrioClient(),
        TrioWebsocketClient(),
        RawTcpClient(),
    )
}
