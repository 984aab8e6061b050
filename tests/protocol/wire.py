"""Building server frames and reading client frames, for the engine's tests."""

from __future__ import annotations

import struct
import zlib
from typing import Protocol

from trio_mws.protocol import ClientEngine, Event
from trio_mws.protocol.frames import apply_mask, serialize_frame


def server_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
) -> bytes:
    """One unmasked frame as a server sends it; ``rsv`` is the RSV bits (0x40 = RSV1)."""
    frame = b"".join(serialize_frame(opcode, payload, fin=fin, mask=False))
    return bytes((frame[0] | rsv,)) + frame[1:]


def raw_header(first: int, length: int, *, masked: bool = False, encoding: int = 0) -> bytes:
    """A frame header with any first byte and a length encoded on 1, 2 or 8 extra bytes
    (``encoding`` 0/2/8), for malformed frames."""
    mask_bit = 0x80 if masked else 0
    if encoding == 2:
        return struct.pack("!BBH", first, mask_bit | 126, length)
    if encoding == 8:
        return struct.pack("!BBQ", first, mask_bit | 127, length)
    return bytes((first, mask_bit | length))


class Deflater(Protocol):
    """What :func:`deflate` needs of a ``zlib.compressobj``."""

    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self, mode: int, /) -> bytes: ...


def raw_deflater(wbits: int = 15) -> Deflater:
    """A raw-deflate compressor as a server uses."""
    return zlib.compressobj(6, zlib.DEFLATED, -wbits)


def deflate(data: bytes, *, compressor: Deflater | None = None) -> bytes:
    """``data`` compressed as one permessage-deflate message (sync tail removed)."""
    compressor = compressor or raw_deflater()
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def parse_client_frames(wire: bytes) -> list[tuple[int, bool, bool, bytes]]:
    """Split our client's output into (opcode, fin, rsv1, unmasked payload), checking that
    every frame is masked."""
    frames = []
    pos = 0
    while pos < len(wire):
        first, second = wire[pos], wire[pos + 1]
        assert second & 0x80, "client frames are masked"
        length = second & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", wire, pos)
            pos += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", wire, pos)
            pos += 8
        key = wire[pos : pos + 4]
        pos += 4
        payload = apply_mask(wire[pos : pos + length], key)
        pos += length
        frames.append((first & 0x0F, bool(first & 0x80), bool(first & 0x40), payload))
    return frames


def feed(engine: ClientEngine, data: bytes, step: int | None = None) -> list[Event]:
    """Feed ``data`` in reads of ``step`` bytes (all at once by default) and collect every
    event, draining the engine after each read as a connection does."""
    events: list[Event] = []
    step = step or len(data) or 1
    for start in range(0, len(data), step):
        engine.receive_data(data[start : start + step])
        while batch := engine.events_received():
            events.extend(batch)
    return events
