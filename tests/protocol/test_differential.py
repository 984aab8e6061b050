"""Differential fuzzing: our engine against wsproto and websockets' sans-I/O client.

Random server byte streams (:mod:`tests.protocol.strategies`: valid and invalid frame
sequences, fragmentation, interleaved control frames, permessage-deflate with context
takeover, reads cut down to one byte) go to our engine (FULL mode, and PARTIAL mode with a
random piece limit, its pieces joined) and to the oracles. What each delivers is reduced to
observations — whole messages (type and bytes), pings, pongs, the server's close (code and
reason), or a failure (close code) — up to the first close or failure. They must be equal.

Where they may differ, by decision (each case is recognised precisely, by the failure's
description, and only the first difference is excused):

Both:
- E1: we judge a frame by its header (opcode, RSV bits, continuation rules) at once, and its
  payload (UTF-8, deflate data) as it arrives; the oracles wait for the whole frame, which
  never comes when the stream ends inside it.

wsproto (1.3):
- W1: close code 1014 (Bad Gateway, IANA-registered): we accept it, wsproto fails with 1002.
- W2: issue 7 defect 13: a new data frame inside a fragmented compressed message. We fail
  with 1002 from its header; wsproto inflates it first and may fail with 1007 instead.
- W3: a control frame between the fragments of a compressed message: wsproto's extension
  takes the control frame's end for the message's end (the bug our old ``compression.py``
  patched): from that message on, its messages are wrong or it fails with 1007, so the
  comparison stops there (the unit tests check that we deliver what the server compressed).

websockets (its sans-I/O ``ClientProtocol``, opened by a real handshake):
- S1: its protocol layer does not validate UTF-8 (its connection decodes later): where we
  fail with 1007 for a text message, it delivers the bytes.
- S2: it fails with 1002 on a close frame inside a fragmented message; we accept the close
  (RFC 6455 5.4 allows control frames between fragments) and drop the unfinished message.
- S3: it accepts lengths not in their minimal encoding and 64-bit lengths with the top bit
  set; we fail with 1002 (RFC 6455 5.2: "the minimal number of bytes MUST be used"; the top
  bit MUST be 0), as wsproto does.
- S4: invalid compressed data: it fails with 1002, we (and wsproto) with 1007.
- S5: a close frame with an invalid code and a reason that is not UTF-8: it checks the reason
  first (1007), we check the code first (1002), as wsproto does.

Both directions with websockets' server protocol, negotiated from our offer with random
deflate parameters (context takeover, window bits): what we send, it must read; what it
sends, we must read.

``TRIO_MWS_FUZZ_EXAMPLES`` sets the number of examples per test (default 150, under ~30 s).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Close as WebsocketsClose
from websockets.frames import Frame as WebsocketsFrame
from websockets.frames import Opcode as WebsocketsOpcode
from websockets.http11 import Request as WebsocketsRequest
from websockets.http11 import Response as WebsocketsResponse
from websockets.protocol import State as WebsocketsState
from websockets.server import ServerProtocol
from websockets.uri import parse_uri
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

from trio_mws.enums import SocketMessageType
from trio_mws.protocol import (
    CLIENT_OFFER,
    ClientEngine,
    CloseReceived,
    DataReceived,
    DeflateParameters,
    PingReceived,
    PongReceived,
    ProtocolError,
    parse_answer,
)

from .strategies import Script, chunks, read_splits, scripts

# An observation: ("message", is_text, data) | ("ping", payload) | ("pong", payload)
# | ("close", code, reason) | ("fail", code, description)
Observation = tuple[Any, ...]

EXAMPLES = int(os.environ.get("TRIO_MWS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _until_the_end(observations: list[Observation]) -> list[Observation]:
    for index, observation in enumerate(observations):
        if observation[0] in ("close", "fail"):
            return observations[: index + 1]
    return observations


# ------------------------------------------------------------------------------ our engine


def run_ours(
    reads: Iterable[bytes],
    deflate: bool,
    piece_limit: int | None,
    parameters: DeflateParameters | None = None,
) -> list[Observation]:
    """Our engine, FULL mode (``piece_limit`` None) or PARTIAL with pieces joined; with
    ``deflate``, default parameters unless ``parameters`` are given."""
    engine = ClientEngine(
        max_message_size=None,
        partial=piece_limit is not None,
        piece_limit=piece_limit or 65536,
        deflate=parameters or (DeflateParameters() if deflate else None),
    )
    observations: list[Observation] = []
    pending = b""
    for read in reads:
        engine.receive_data(read)
        while events := engine.events_received():
            for event in events:
                if isinstance(event, DataReceived):
                    if piece_limit is not None:
                        assert len(event.data) <= max(piece_limit, 4)
                        if event.message_type is SocketMessageType.UTF8:
                            event.data.decode()  # pieces end on character boundaries
                    pending += event.data
                    if event.fin:
                        text = event.message_type is SocketMessageType.UTF8
                        observations.append(("message", text, pending))
                        pending = b""
                elif isinstance(event, PingReceived):
                    observations.append(("ping", event.payload))
                elif isinstance(event, PongReceived):
                    observations.append(("pong", event.payload))
                elif isinstance(event, CloseReceived):
                    observations.append(("close", event.code, event.reason))
                elif isinstance(event, ProtocolError):
                    observations.append(("fail", event.code, event.message))
        if engine.state.name == "CLOSED":
            break
    return observations


# --------------------------------------------------------------------------------- wsproto


def run_wsproto(reads: Iterable[bytes], deflate: bool) -> list[Observation]:
    extensions: list[Extension] = []
    if deflate:
        extension = PerMessageDeflate()
        extension.finalize("permessage-deflate")  # the server's answer: defaults
        extensions.append(extension)
    connection = Connection(ConnectionType.CLIENT, extensions=extensions)
    observations: list[Observation] = []
    pending = b""
    for read in reads:
        connection.receive_data(read)
        for event in connection.events():
            if isinstance(event, TextMessage | BytesMessage):
                data = event.data.encode() if isinstance(event, TextMessage) else event.data
                pending += data
                if event.message_finished:
                    observations.append(("message", isinstance(event, TextMessage), pending))
                    pending = b""
            elif isinstance(event, Ping):
                observations.append(("ping", bytes(event.payload)))
            elif isinstance(event, Pong):
                observations.append(("pong", bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                # A received close frame moves the state on; a parse failure does not.
                if connection.state is ConnectionState.REMOTE_CLOSING:
                    observations.append(("close", int(event.code), event.reason or ""))
                else:
                    observations.append(("fail", int(event.code), event.reason or ""))
                return observations
    return observations


# ------------------------------------------------------------------------------ websockets


def _open_websockets_client(deflate: bool) -> ClientProtocol:
    """A websockets client protocol opened by a real (in-memory) handshake."""
    factories = [ClientPerMessageDeflateFactory()] if deflate else None
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"), extensions=factories, max_size=None)
    request = client.connect()
    client.send_request(request)
    client.data_to_send()
    key = request.headers["Sec-WebSocket-Key"]
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n"
        + ("Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else "")
        + "\r\n"
    )
    client.receive_data(response.encode())
    [event] = client.events_received()
    assert isinstance(event, WebsocketsResponse)
    assert client.state is WebsocketsState.OPEN, client.handshake_exc
    return client


def run_websockets(reads: Iterable[bytes], deflate: bool) -> list[Observation]:
    client = _open_websockets_client(deflate)
    observations: list[Observation] = []
    pending = b""
    text = False
    for read in reads:
        client.receive_data(read)
        for frame in client.events_received():
            assert isinstance(frame, WebsocketsFrame)
            opcode = frame.opcode
            if opcode in (WebsocketsOpcode.TEXT, WebsocketsOpcode.BINARY):
                text = opcode is WebsocketsOpcode.TEXT
                pending = b""
            if opcode in (WebsocketsOpcode.TEXT, WebsocketsOpcode.BINARY, WebsocketsOpcode.CONT):
                pending += bytes(frame.data)
                if frame.fin:
                    observations.append(("message", text, pending))
            elif opcode is WebsocketsOpcode.PING:
                observations.append(("ping", bytes(frame.data)))
            elif opcode is WebsocketsOpcode.PONG:
                observations.append(("pong", bytes(frame.data)))
            elif opcode is WebsocketsOpcode.CLOSE:
                close = WebsocketsClose.parse(bytes(frame.data))
                observations.append(("close", close.code, close.reason))
                return observations
        if client.parser_exc is not None:
            assert client.close_sent is not None
            observations.append(("fail", client.close_sent.code, str(client.parser_exc)))
            return observations
    return observations


# ------------------------------------------------------------------------------ comparing


@dataclass(frozen=True)
class Stream:
    """What was fed: the bytes, and the script they came from (None for arbitrary bytes)."""

    wire: bytes
    script: Script | None = None


# An excuse: (name, predicate on the first differing observation of ours and of theirs,
# given the observations agreed before and the stream).
Excuse = tuple[
    str, Callable[[Observation | None, Observation | None, list[Observation], Stream], bool]
]


def ends_inside_a_frame(wire: bytes) -> bool:
    """Whether the stream ends inside a frame's header or payload (frames walked without
    any validation)."""
    position = 0
    while position < len(wire):
        if len(wire) - position < 2:
            return True
        length = wire[position + 1] & 0x7F
        header = 2 + (4 if wire[position + 1] & 0x80 else 0)
        if length == 126:
            header += 2
        elif length == 127:
            header += 8
        if len(wire) - position < header:
            return True
        if length >= 126:
            size = header - 2 - (4 if wire[position + 1] & 0x80 else 0)
            length = int.from_bytes(wire[position + 2 : position + 2 + size], "big")
        position += header + length
    return position > len(wire)


def _after_compressed_message_with_controls(agreed: list[Observation], stream: Stream) -> bool:
    """Whether the agreed observations reach the script's first compressed message that has a
    control frame between two of its fragments."""
    if stream.script is None:
        return False
    found = stream.script.compressed_messages_with_controls_inside()
    return bool(found) and sum(1 for seen in agreed if seen[0] == "message") >= found[0]


def _fails(observation: Observation | None, code: int, *phrases: str) -> bool:
    return (
        observation is not None
        and observation[0] == "fail"
        and observation[1] == code
        and any(phrase in observation[2] for phrase in phrases)
    )


# Both oracles judge some frames only once their payload arrived.
EARLY: Excuse = (
    "E1 judged at the header",
    lambda ours, theirs, _, stream: (
        ours is not None
        and ours[0] == "fail"
        and theirs is None
        and ends_inside_a_frame(stream.wire)
    ),
)


def _w3(
    _: Observation | None, __: Observation | None, agreed: list[Observation], stream: Stream
) -> bool:
    return _after_compressed_message_with_controls(agreed, stream)


WSPROTO_EXCUSES: list[Excuse] = [
    EARLY,
    (
        "W1 close code 1014",
        # wsproto rejects 1014 as an unknown reserved code; we accept it, then check the reason
        lambda ours, theirs, _, __: (
            (
                (ours is not None and ours[:2] == ("close", 1014))
                or _fails(ours, 1007, "close reason")
            )
            and _fails(theirs, 1002, "unknown reserved code")
        ),
    ),
    (
        "W2 defect 13",
        lambda ours, theirs, _, __: (
            _fails(ours, 1002, "new data frame inside a fragmented message")
            and theirs is not None
            and theirs[:2] == ("fail", 1007)
        ),
    ),
    ("W3 control frame between compressed fragments", _w3),
]

WEBSOCKETS_EXCUSES: list[Excuse] = [
    EARLY,
    ("S1 no UTF-8 validation", lambda ours, _, __, ___: _fails(ours, 1007, "text message")),
    (
        "S2 close inside a fragmented message",
        lambda ours, theirs, _, __: (
            ours is not None
            and ours[0] == "close"
            and _fails(theirs, 1002, "incomplete fragmented message")
        ),
    ),
    (
        "S3 length encoding",
        lambda ours, _, __, ___: _fails(ours, 1002, "minimal encoding", "most significant bit"),
    ),
    (
        "S5 close code and reason both invalid",
        lambda ours, theirs, _, __: (
            _fails(ours, 1002, "close frame with invalid code") and _fails(theirs, 1007, "")
        ),
    ),
    (
        "S4 invalid compressed data",
        lambda ours, theirs, _, __: (
            _fails(ours, 1007, "compressed data") and _fails(theirs, 1002, "")
        ),
    ),
]

#: Excuses used, by name (printed by the long run: ``pytest -s``).
EXCUSED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_excuses() -> Iterator[None]:
    """Show how often each excuse was used (visible with ``pytest -s``)."""
    yield
    print(f"\nexcused first differences: {dict(sorted(EXCUSED.items()))}")


def _comparable(observation: Observation) -> Observation:
    return observation[:2] if observation[0] == "fail" else observation


def assert_agree(
    ours: list[Observation],
    theirs: list[Observation],
    excuses: list[Excuse],
    name: str,
    stream: Stream,
) -> None:
    ours, theirs = _until_the_end(ours), _until_the_end(theirs)
    index = 0
    while (
        index < len(ours)
        and index < len(theirs)
        and _comparable(ours[index]) == _comparable(theirs[index])
    ):
        index += 1
    if index == len(ours) == len(theirs):
        return
    first_ours = ours[index] if index < len(ours) else None
    first_theirs = theirs[index] if index < len(theirs) else None
    for excuse, applies in excuses:
        if applies(first_ours, first_theirs, ours[:index], stream):
            EXCUSED[excuse] = EXCUSED.get(excuse, 0) + 1
            return
    raise AssertionError(
        f"{name} disagrees at observation {index}:\n ours:   {first_ours!r}\n"
        f" {name}: {first_theirs!r}\n (agreed before: {ours[:index]!r})"
    )


@FUZZ
@given(scripts(), read_splits(), st.one_of(st.none(), st.integers(1, 300)))
def test_full_and_partial_modes_agree_with_wsproto(
    script: Script, splits: list[int], piece_limit: int | None
) -> None:
    stream = Stream(script.wire(), script)
    reads = list(chunks(stream.wire, splits))
    ours = run_ours(reads, script.deflate, None)
    if piece_limit is not None:
        # PARTIAL joined back must equal FULL, without excuses. Failure descriptions may
        # differ: PARTIAL inflates in steps, so in data both corrupt and not UTF-8 it may see
        # the bad text first, where FULL's one zlib call reports the bad deflate data (close
        # code 1007 both ways).
        partial = _until_the_end(run_ours(reads, script.deflate, piece_limit))
        assert [_comparable(seen) for seen in partial] == [
            _comparable(seen) for seen in _until_the_end(ours)
        ]
    assert_agree(ours, run_wsproto(reads, script.deflate), WSPROTO_EXCUSES, "wsproto", stream)


@FUZZ
@given(scripts(), read_splits())
def test_agrees_with_websockets(script: Script, splits: list[int]) -> None:
    stream = Stream(script.wire(), script)
    reads = list(chunks(stream.wire, splits))
    ours = run_ours(reads, script.deflate, None)
    theirs = run_websockets(reads, script.deflate)
    assert_agree(ours, theirs, WEBSOCKETS_EXCUSES, "websockets", stream)


@FUZZ
@given(st.binary(max_size=300), read_splits(), st.booleans())
def test_arbitrary_bytes(data: bytes, splits: list[int], deflate: bool) -> None:
    reads = list(chunks(data, splits))
    ours = run_ours(reads, deflate, None)
    stream = Stream(data)
    assert_agree(ours, run_wsproto(reads, deflate), WSPROTO_EXCUSES, "wsproto", stream)
    assert_agree(ours, run_websockets(reads, deflate), WEBSOCKETS_EXCUSES, "websockets", stream)


# ----------------------------------------------- both directions against a websockets server

# A message to send: (text, fragments, whether a ping goes after each non-final fragment).
Outgoing = tuple[bool, list[bytes], bool]


@st.composite
def _outgoing(draw: st.DrawFn) -> Outgoing:
    text = draw(st.booleans())
    payload = draw(st.text(max_size=200)).encode() if text else draw(st.binary(max_size=300))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
    bounds = [0, *cuts, len(payload)]
    fragments = [payload[start:stop] for start, stop in itertools.pairwise(bounds)]
    return text, fragments, draw(st.booleans())  # text fragments may split characters


outgoing_messages = st.lists(_outgoing(), max_size=6)
window_bits = st.one_of(st.none(), st.integers(9, 15))  # websockets refuses 8


def _websockets_server(
    factory: ServerPerMessageDeflateFactory | None,
) -> tuple[ServerProtocol, str]:
    """A websockets server protocol opened by our offer; returns it and its extension answer
    (empty when it accepted none)."""
    server = ServerProtocol(extensions=[factory] if factory else None, max_size=None)
    request = (
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Extensions: {CLIENT_OFFER}\r\n\r\n"
    )
    server.receive_data(request.encode())
    [event] = server.events_received()
    assert isinstance(event, WebsocketsRequest)
    response = server.accept(event)
    server.send_response(response)
    server.data_to_send()
    assert server.state is WebsocketsState.OPEN
    return server, response.headers.get("Sec-WebSocket-Extensions", "")


@FUZZ
@given(
    outgoing_messages,
    outgoing_messages,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    window_bits,
    window_bits,
    read_splits(),
)
def test_round_trip_with_a_websockets_server(
    to_server: list[Outgoing],
    to_client: list[Outgoing],
    deflate: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: int | None,
    client_max_window_bits: int | None,
    splits: list[int],
) -> None:
    """Our offer, our parsing of the answer, our compressor and serializer, and our parser
    and decompressor, against websockets' server with random deflate parameters."""
    factory = None
    if deflate:
        factory = ServerPerMessageDeflateFactory(
            server_no_context_takeover=server_no_context_takeover,
            client_no_context_takeover=client_no_context_takeover,
            server_max_window_bits=server_max_window_bits,
            client_max_window_bits=client_max_window_bits,
        )
    server, answer = _websockets_server(factory)
    parameters = parse_answer(answer) if answer else None
    assert (parameters is not None) == deflate
    client = ClientEngine(max_message_size=None, partial=False, deflate=parameters)

    # client -> server
    for text, fragments, pings in to_server:
        kind = SocketMessageType.UTF8 if text else SocketMessageType.BINARY
        for index, fragment in enumerate(fragments):
            last = index == len(fragments) - 1
            client.send_data(kind, fragment, fin=last)
            if pings and not last:
                client.send_ping(b"between")
    received: list[Observation] = []
    pending = b""
    for read in chunks(b"".join(client.data_to_send()), splits):
        server.receive_data(read)
        for frame in server.events_received():
            assert isinstance(frame, WebsocketsFrame)
            if frame.opcode is WebsocketsOpcode.PING:
                received.append(("ping", bytes(frame.data)))
                continue
            if frame.opcode is not WebsocketsOpcode.CONT:
                text = frame.opcode is WebsocketsOpcode.TEXT
            pending += bytes(frame.data)
            if frame.fin:
                received.append(("message", text, pending))
                pending = b""
    assert server.parser_exc is None
    expected: list[Observation] = []
    for text, fragments, pings in to_server:
        expected += [("ping", b"between")] * (len(fragments) - 1 if pings else 0)
        expected.append(("message", text, b"".join(fragments)))
    assert received == expected

    # server -> client
    for text, fragments, pings in to_client:
        for index, fragment in enumerate(fragments):
            last = index == len(fragments) - 1
            if index:
                server.send_continuation(fragment, fin=last)
            elif text:
                server.send_text(fragment, fin=last)
            else:
                server.send_binary(fragment, fin=last)
            if pings and not last:
                server.send_ping(b"between")
    wire = b"".join(server.data_to_send())
    delivered = run_ours(list(chunks(wire, splits)), False, None, parameters)
    expected = [("pong", b"between")] * sum(1 for seen in received if seen[0] == "ping")
    for text, fragments, pings in to_client:
        expected += [("ping", b"between")] * (len(fragments) - 1 if pings else 0)
        expected.append(("message", text, b"".join(fragments)))
    assert delivered == expected
