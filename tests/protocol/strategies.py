"""Hypothesis strategies for server byte streams: valid and invalid frame sequences.

Reusable by any test that feeds a client WebSocket parser:

- :func:`scripts` draws a :class:`Script`, a list of server actions (messages, fragmented or
  not, compressed or not, with control frames interleaved between fragments; pings, pongs,
  close frames with valid or invalid codes and reasons; malformed frames; raw garbage);
- :meth:`Script.wire` turns it into the bytes a server would send (one permessage-deflate
  context with context takeover across messages, as RFC 7692 allows by default);
- :func:`read_splits` draws how a transport cuts those bytes into reads (down to 1 byte).
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from hypothesis import strategies as st

from .wire import Deflater, raw_deflater

__all__ = [
    "Close",
    "Control",
    "Garbage",
    "Malformed",
    "Message",
    "Script",
    "chunks",
    "read_splits",
    "scripts",
]

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
SYNC_TAIL = b"\x00\x00\xff\xff"


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = False,
    length_bytes: int | None = None,
) -> bytes:
    """One server frame. ``length_bytes`` (0, 2 or 8) forces the length's encoding, minimal
    or not; ``masked`` masks it with a fixed key (servers must not)."""
    length = len(payload)
    if length_bytes is None:
        length_bytes = 0 if length < 126 else 2 if length < 65536 else 8
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if length_bytes == 0:
        header = bytes((first, mask_bit | length))
    elif length_bytes == 2:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if masked:
        key = b"\x12\x34\x56\x78"
        payload = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
        header += key
    return header + payload


@dataclass(frozen=True)
class Control:
    """A ping, pong or close frame (payload at most 125 bytes)."""

    opcode: int
    payload: bytes

    def wire(self, _compressor: Deflater | None = None) -> bytes:
        """Its bytes on the wire."""
        return frame(self.opcode, self.payload)


@dataclass(frozen=True)
class Close:
    """A close frame with any payload (valid or not)."""

    payload: bytes

    def wire(self, _compressor: Deflater | None = None) -> bytes:
        """Its bytes on the wire."""
        return frame(OP_CLOSE, self.payload)


@dataclass(frozen=True)
class Malformed:
    """A frame that breaks RFC 6455 (or uses a bit no extension allows), as raw bytes."""

    data: bytes
    what: str

    def wire(self, _compressor: Deflater | None = None) -> bytes:
        """Its bytes on the wire."""
        return self.data


@dataclass(frozen=True)
class Garbage:
    """Arbitrary bytes."""

    data: bytes

    def wire(self, _compressor: Deflater | None = None) -> bytes:
        """Its bytes on the wire."""
        return self.data


@dataclass(frozen=True)
class Message:
    """A data message, cut into frames at ``cuts`` (positions in its wire payload, after
    compression), with control frames after some fragments.

    ``intruder``: a data frame (first byte, payload) sent after the first fragment, before the
    message ends (a protocol error). ``rsv1_on_continuation``: set RSV1 on the second frame.
    """

    text: bool
    payload: bytes
    compressed: bool = False
    cuts: tuple[int, ...] = ()
    controls: tuple[tuple[int, Control], ...] = ()
    intruder: tuple[int, bytes] | None = None
    rsv1_on_continuation: bool = False

    def fragments(self, compressor: Deflater | None = None) -> list[bytes]:
        """The frames' payloads: compressed (with ``compressor``, whose context moves on),
        then cut."""
        data = self.payload
        if self.compressed:
            assert compressor is not None
            data = (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        bounds = [0, *sorted({min(cut, len(data)) for cut in self.cuts}), len(data)]
        return [data[start:stop] for start, stop in itertools.pairwise(bounds)]

    def controls_inside(self, fragments: int) -> bool:
        """Whether a control frame goes between two of its ``fragments``."""
        return any(after < fragments - 1 for after, _ in self.controls)

    def wire(self, compressor: Deflater | None = None) -> bytes:
        """Its frames' bytes, and the control and intruding frames between them."""
        pieces = self.fragments(compressor)
        out = []
        for index, piece in enumerate(pieces):
            first = index == 0
            rsv = 0x40 if (first and self.compressed) else 0
            if index == 1 and self.rsv1_on_continuation:
                rsv = 0x40
            opcode = (OP_TEXT if self.text else OP_BINARY) if first else OP_CONTINUATION
            out.append(frame(opcode, piece, fin=index == len(pieces) - 1, rsv=rsv))
            for after, control in self.controls:
                if after == index and index < len(pieces) - 1:
                    out.append(control.wire())
            if first and self.intruder is not None and len(pieces) > 1:
                first_byte, payload = self.intruder
                out.append(bytes((first_byte,)) + frame(OP_BINARY, payload)[1:])
        return b"".join(out)


Action = Message | Control | Close | Malformed | Garbage


@dataclass(frozen=True)
class Script:
    """What a server sends, in order."""

    actions: tuple[Action, ...]
    deflate: bool = field(default=False)

    def wire(self) -> bytes:
        """The bytes on the wire; compressed messages share one context (takeover)."""
        compressor = raw_deflater() if self.deflate else None
        return b"".join(action.wire(compressor) for action in self.actions)

    def compressed_messages_with_controls_inside(self) -> list[int]:
        """Indexes (among the script's messages) of the compressed messages that have a
        control frame between two of their fragments, once compressed and cut."""
        compressor = raw_deflater() if self.deflate else None
        found = []
        messages = [action for action in self.actions if isinstance(action, Message)]
        for index, message in enumerate(messages):
            fragments = len(message.fragments(compressor))
            if message.compressed and message.controls_inside(fragments):
                found.append(index)
        return found


# ----------------------------------------------------------------------------- strategies

_CLOSE_CODES = st.one_of(
    st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013]),
    st.sampled_from([1014, 3000, 3999, 4000, 4999]),
    st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]),
    st.integers(0, 65535),
)


def _payload(max_size: int) -> st.SearchStrategy[bytes]:
    small = st.binary(max_size=max_size)
    # lengths around the 7-bit and 16-bit encodings' edges, cheap to build
    edges = st.sampled_from([125, 126, 127, 65535, 65536, 70000]).map(lambda n: b"\xab" * n)
    return st.one_of(small, small, small, edges)


@st.composite
def _text_payload(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # sometimes not UTF-8 at all
        return draw(st.binary(max_size=40))
    text = draw(st.text(max_size=60))
    if draw(st.integers(0, 7)) == 0:
        text *= 300  # long enough to be fragmented into many pieces
    return text.encode()


controls = st.builds(
    Control,
    st.sampled_from([OP_PING, OP_PONG]),
    st.binary(max_size=125),
)


# Between a message's fragments: pings and pongs, sometimes a (valid) close frame.
_between_fragments = st.one_of(
    controls,
    controls,
    controls,
    st.builds(Control, st.just(OP_CLOSE), st.sampled_from([b"", b"\x03\xe8", b"\x03\xe9bye"])),
)


@st.composite
def closes(draw: st.DrawFn) -> Close:
    """Valid and invalid close frames."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return Close(b"")
    if kind == 1:
        return Close(draw(st.binary(min_size=1, max_size=1)))
    code = draw(_CLOSE_CODES).to_bytes(2, "big")
    if kind == 2:
        return Close(code + draw(st.binary(max_size=20)))  # reason maybe not UTF-8
    return Close(code + draw(st.text(max_size=30)).encode()[:123])


@st.composite
def messages(draw: st.DrawFn, deflate: bool) -> Message:
    """A message, maybe fragmented, compressed (with ``deflate``), with control frames
    between its fragments, and rarely an intruding data frame or RSV1 on a continuation."""
    text = draw(st.booleans())
    payload = draw(_text_payload()) if text else draw(_payload(200))
    compressed = deflate and draw(st.integers(0, 3)) > 0
    wire_size = len(payload) + 16  # cuts beyond the compressed size are clamped
    cuts = tuple(draw(st.lists(st.integers(0, wire_size), max_size=5)))
    controls_between = tuple(
        draw(st.lists(st.tuples(st.integers(0, 5), _between_fragments), max_size=3))
    )
    intruder = None
    rsv1_on_continuation = False
    mutation = draw(st.integers(0, 19))
    if mutation == 0:
        intruder = (
            draw(st.sampled_from([0x81, 0x82, 0xC1, 0xC2, 0x01, 0x02])),
            draw(st.sampled_from([b"", b"\xff\xff\xff\xff", b"ok"])),
        )
    elif mutation == 1:
        rsv1_on_continuation = True
    return Message(
        text, payload, compressed, cuts, controls_between, intruder, rsv1_on_continuation
    )


@st.composite
def malformed(draw: st.DrawFn) -> Malformed:
    """One frame that breaks a rule of RFC 6455 (or uses a reserved bit)."""
    kind = draw(st.integers(0, 10))
    payload = draw(st.binary(max_size=10))
    if kind == 0:
        opcode = draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]))
        return Malformed(frame(opcode, payload), "unknown opcode")
    if kind == 1:
        opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE]))
        rsv = draw(st.sampled_from([0x40, 0x20, 0x10, 0x70]))
        return Malformed(frame(opcode, payload, rsv=rsv), "reserved bits")
    if kind == 2:
        return Malformed(frame(OP_BINARY, payload, masked=True), "masked")
    if kind == 3:
        opcode = draw(st.sampled_from([OP_PING, OP_PONG, OP_CLOSE]))
        return Malformed(frame(opcode, payload, fin=False), "fragmented control frame")
    if kind == 4:
        opcode = draw(st.sampled_from([OP_PING, OP_PONG]))
        return Malformed(frame(opcode, b"p" * draw(st.integers(126, 300))), "long control")
    if kind == 5:
        return Malformed(frame(OP_CONTINUATION, payload), "continuation first")
    if kind == 6:
        length_bytes = draw(st.sampled_from([2, 8]))
        return Malformed(frame(OP_BINARY, payload, length_bytes=length_bytes), "non-minimal")
    if kind == 7:
        return Malformed(struct.pack("!BBQ", 0x82, 127, 1 << 63 | 5) + b"12345", "length MSB")
    if kind == 8:
        return Malformed(frame(OP_TEXT, b"\xff" + payload), "invalid UTF-8")
    if kind == 9:
        return Malformed(frame(OP_BINARY, payload, fin=False), "unfinished message")
    return Malformed(frame(OP_TEXT, "é".encode()[:1], fin=True), "truncated character")


def actions(deflate: bool) -> st.SearchStrategy[Action]:
    """One server action, messages most often."""
    return st.one_of(
        messages(deflate),
        messages(deflate),
        messages(deflate),
        controls,
        closes(),
        malformed(),
        st.builds(Garbage, st.binary(min_size=1, max_size=12)),
    )


@st.composite
def scripts(draw: st.DrawFn, deflate: bool | None = None) -> Script:
    """A server's byte stream as a script of actions (with or without permessage-deflate
    when ``deflate`` is None)."""
    if deflate is None:
        deflate = draw(st.booleans())
    return Script(tuple(draw(st.lists(actions(deflate), max_size=8))), deflate)


def read_splits() -> st.SearchStrategy[list[int]]:
    """Read sizes a transport may produce (cycled over the stream); [] means one read."""
    return st.one_of(
        st.just([]),
        st.just([1]),
        st.lists(st.integers(1, 7), min_size=1, max_size=10),
        st.lists(st.integers(1, 70000), min_size=1, max_size=10),
    )


#: At most about this many reads per stream: small read sizes are scaled up for long streams
#: (a 70 KB frame read byte by byte would take seconds in the oracles).
MAX_READS = 2000


def chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` cut into reads of ``sizes`` (cycled, scaled up to at most about
    :data:`MAX_READS` reads); one read when ``sizes`` is empty."""
    if not sizes:
        yield data
        return
    average = sum(sizes) / len(sizes)
    if len(data) / average > MAX_READS:
        scale = int(len(data) / average / MAX_READS) + 1
        sizes = [size * scale for size in sizes]
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        yield data[position : position + size]
        position += size
        index += 1
