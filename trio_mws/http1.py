"""One HTTP/1.1 request and its response over a stream, parsed by h11 and bounded.

Used by the upgrade (``GET`` with ``Upgrade: websocket``) and by the proxy's ``CONNECT``.
h11 does the parsing (strict ASCII digits, framing by Content-Length, chunked or EOF); this
module moves the bytes and keeps the limits: the response head is at most ``MAX_HEAD`` bytes
and at most ``MAX_BODY`` bytes of an error body are read at all, whatever its framing.
"""

from __future__ import annotations

import os
from typing import cast

import h11
import trio

from .enums import WebErrorStatus
from .errors import ConnectError, HandshakeError
from .information import HandshakeResponse
from .socket_io import direct_descriptor
from .status import classify

__all__ = [
    "BODY_WAIT",
    "MAX_BODY",
    "MAX_HEAD",
    "HttpExchange",
    "invalid_response",
    "parse_switched_head",
    "response_of",
]

#: Bytes of one response head (status line and headers) we accept; 8 interim heads at most.
MAX_HEAD = 64 * 1024
#: Bytes of a response body we read and keep; the rest is never read.
MAX_BODY = 64 * 1024
_READ_SIZE = 65536
#: Interim (1xx) responses tolerated before the final one.
_MAX_INTERIM = 8
#: Seconds we wait for the rest of an error body: its status is what matters.
BODY_WAIT = 5.0

Head = h11.Response | h11.InformationalResponse

# What h11 needs to know of a request to frame its response (events are immutable: made once).
_UPGRADE = h11.Request(
    method=b"GET", target=b"/", headers=[(b"Host", b"h"), (b"Upgrade", b"websocket")]
)
_CONNECT = h11.Request(method=b"CONNECT", target=b"h:1", headers=[(b"Host", b"h:1")])
_END = h11.EndOfMessage()


def response_of(head: Head) -> HandshakeResponse:
    """The public view of an h11 response head (text decoded as Latin-1, names as sent)."""
    return HandshakeResponse(
        head.status_code,
        head.reason.decode("iso-8859-1"),
        tuple(
            (name.decode("iso-8859-1"), value.decode("iso-8859-1"))
            for name, value in head.headers.raw_items()
        ),
    )


def invalid_response(message: str, head: Head | None = None) -> HandshakeError:
    """The error for a response that is not valid HTTP or not a valid answer."""
    response = response_of(head) if head is not None else None
    return HandshakeError(
        message,
        WebErrorStatus.ERROR_HTTP_INVALID_SERVER_RESPONSE,
        status_code=response.status_code if response else None,
        headers=response.headers if response else (),
    )


def parse_switched_head(head: bytes) -> Head:
    """Parse again a head that :meth:`HttpExchange.switched` returned after a 101."""
    http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    http.send(_UPGRADE)
    http.send(_END)
    http.receive_data(head)
    for _ in range(head.count(b"\r\n\r\n")):  # one head per blank line at most
        event = http.next_event()
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            return event
    raise ValueError("not the head of a 101 response")


class HttpExchange:
    """A client request and the server's response over ``stream`` (not closed here).

    On a plain POSIX socket the request is written and the response read with direct
    non-blocking system calls: they skip the scheduling round trio adds after each socket
    operation, which is a measurable part of a handshake's cost.
    """

    _http: h11.Connection  # made by send_request once the request is on its way

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._fd = direct_descriptor(stream)
        self._received = bytearray()  # everything read up to the end of the head
        self._head_done = False
        self._need_data = True  # nothing received yet: read before asking h11 for an event

    async def send_request(self, request: bytes, *, connect: bool = False) -> None:
        """Send ``request``: a complete head without body, built by the caller; a ``GET``
        proposing an upgrade, or a ``CONNECT`` when ``connect``.

        h11 is told only what decides how the response is framed: the method and whether
        an upgrade is proposed. Having h11 serialise the whole request would validate every
        header once more (they were checked when set), a sizeable part of a handshake's CPU.
        It is told after the bytes left, while the server is busy answering.
        """
        sent = 0
        try:
            if self._fd is not None:
                # A fresh socket's send buffer holds a request: usually written at once.
                try:
                    sent = os.write(self._fd, request)
                except BlockingIOError:
                    sent = 0
            if sent < len(request):
                await self._stream.send_all(request[sent:])
        except (trio.BrokenResourceError, OSError) as exc:
            raise ConnectError(
                f"connection lost sending the request: {exc}", classify(exc)
            ) from exc
        self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._http.send(_CONNECT if connect else _UPGRADE)
        self._http.send(_END)

    async def _receive(self) -> bytes:
        try:
            if self._fd is None:
                return bytes(await self._stream.receive_some(_READ_SIZE))
            while True:  # ends with data, EOF or an error: one wait per empty read
                try:
                    return os.read(self._fd, _READ_SIZE)
                except BlockingIOError:
                    pass
                await trio.lowlevel.wait_readable(self._fd)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise ConnectError(
                f"connection lost during the handshake: {exc}", classify(exc)
            ) from exc

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        # Bounded: every pass reads new bytes, and h11 refuses a head over MAX_HEAD; the body
        # reader stops at MAX_BODY; connect_timeout bounds the time.
        while True:
            if self._need_data:
                data = await self._receive()
                if not self._head_done:
                    self._received += data
                self._http.receive_data(data)
            try:
                event = self._http.next_event()
            except h11.RemoteProtocolError as exc:
                if not self._received:
                    raise invalid_response(
                        "server closed the connection without answering"
                    ) from exc
                raise invalid_response(f"malformed HTTP response: {exc}") from exc
            self._need_data = event is h11.NEED_DATA
            if not self._need_data:
                return cast(h11.Event | type[h11.PAUSED], event)

    async def read_head(self) -> Head:
        """Read the final response head (or a 101), skipping a few interim 1xx responses."""
        for _ in range(_MAX_INTERIM + 1):
            event = await self._next_event()
            if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                continue
            if isinstance(event, h11.Response | h11.InformationalResponse):
                self._head_done = True
                return event
            raise invalid_response(f"unexpected HTTP event {event!r}")  # pragma: no cover
        raise invalid_response(f"more than {_MAX_INTERIM} interim responses")

    def switched(self) -> tuple[bytes, bytes]:
        """After a 101 (or a 2xx to CONNECT): the raw head and the bytes that followed it."""
        trailing, _closed = self._http.trailing_data
        end = len(self._received) - len(trailing)
        return bytes(self._received[:end]), bytes(trailing)

    async def read_body(self) -> bytes:
        """The body of a response that did not switch protocols: at most ``MAX_BODY`` bytes,
        waited for at most ``BODY_WAIT`` seconds.

        A body cut short, malformed or too slow keeps what arrived: the status is what
        matters then.
        """
        body = bytearray()
        with trio.move_on_after(BODY_WAIT):
            while len(body) < MAX_BODY:
                try:
                    event = await self._next_event()
                except ConnectError:
                    break
                if not isinstance(event, h11.Data):
                    break
                body += event.data
        return bytes(body[:MAX_BODY])
