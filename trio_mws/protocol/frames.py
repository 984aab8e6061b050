"""WebSocket frames (RFC 6455 section 5): opcodes, masking, header parsing, the one serializer.

Everything here works on plain ``int`` opcodes and ``bytes``: the engine's per-frame path must
not build enum members or objects per frame.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

__all__ = [
    "ACCELERATED",
    "MAX_CONTROL_PAYLOAD",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameError",
    "apply_mask",
    "apply_mask_pure",
    "parse_extended_header",
    "serialize_frame",
]

#: The opcodes (RFC 6455 section 5.2), as plain ints: data frames (continuation, text,
#: binary), then control frames (close, ping, pong).
OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Largest payload of a control frame, in bytes (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125

_unpack_short = struct.Struct("!H").unpack_from
_unpack_long = struct.Struct("!Q").unpack_from
_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_pack_tiny_masked = struct.Struct("<BBI").pack  # the key as a little-endian int
_pack_short_masked = struct.Struct("!BBH4s").pack
_pack_long_masked = struct.Struct("!BBQ4s").pack
_from_bytes = int.from_bytes
# For payloads under 126 bytes: the key repeated is ``key * _REPEAT[n]`` (copies 32 bits
# apart, no carries), cut to n bytes by ``_LOW_BYTES[n]``; one multiplication instead of
# building the repeated key as bytes.
_REPEAT = [sum(1 << (32 * index) for index in range((n + 3) // 4)) for n in range(126)]
_LOW_BYTES = [(1 << (8 * n)) - 1 for n in range(126)]


class FrameError(Exception):
    """A received frame's header breaks RFC 6455 (the engine fails with 1002)."""


def parse_extended_header(data: bytes, pos: int) -> tuple[int, int] | None:
    """Parse the frame header that starts at ``data[pos]`` when its second byte is not a
    plain unmasked length below 126 (the engine handles that common case inline).

    Returns ``(payload_length, payload_start)``, or ``None`` when ``data`` does not hold the
    whole header yet. Raises :class:`FrameError` for a masked frame (a server must not mask),
    a length that does not use the minimal encoding, or a 64-bit length with the top bit set.
    """
    second = data[pos + 1]
    if second & 0x80:
        raise FrameError("the server sent a masked frame")
    length = second & 0x7F
    if length == 126:
        if len(data) - pos < 4:
            return None
        (length,) = _unpack_short(data, pos + 2)
        if length < 126:
            raise FrameError("frame length not in its minimal encoding")
        return length, pos + 4
    if length == 127:
        if len(data) - pos < 10:
            return None
        (length,) = _unpack_long(data, pos + 2)
        if length < 65536:
            raise FrameError("frame length not in its minimal encoding")
        if length >> 63:
            raise FrameError("frame length with the most significant bit set")
        return length, pos + 10
    return length, pos + 2


_c_mask: Callable[[bytes | bytearray | memoryview, bytes], bytes] | None
try:  # the optional C accelerator (see _mask.c); pure Python when it was not built
    from ._mask import mask as _c_mask
except ImportError:  # pragma: no cover - depends on the build
    _c_mask = None

#: Whether masking runs in C (the optional ``_mask`` extension was built with the package).
ACCELERATED = _c_mask is not None


def _mask_small(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR ``payload`` with ``key`` repeated, as one big integer (fast for any length up to a
    few MiB; CPython's big-int XOR is linear)."""
    length = len(payload)
    repeated = key * ((length >> 2) + 1)
    if len(repeated) != length:
        repeated = repeated[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        length, "little"
    )


#: Payloads are masked in pieces of this many bytes (a multiple of 4, so the key lines up):
#: one piece's temporary integers stay small (measured fastest between 16 and 64 KiB: below
#: the allocator's mmap threshold, buffers are recycled), and a large payload never becomes
#: one buffer.
MASK_PIECE = 64 * 1024


def _mask_pieces(data: bytes | bytearray | memoryview, key: bytes) -> list[bytes]:
    """``data`` masked, in :data:`MASK_PIECE` pieces; the key repeated over a whole piece is
    turned into an integer once for all of them."""
    view = memoryview(data)
    length = len(view)
    whole = length - length % MASK_PIECE
    key_int = _from_bytes(key * (MASK_PIECE // 4), "little")
    pieces = [
        (_from_bytes(view[start : start + MASK_PIECE], "little") ^ key_int).to_bytes(
            MASK_PIECE, "little"
        )
        for start in range(0, whole, MASK_PIECE)
    ]
    if whole < length:
        pieces.append(_mask_small(view[whole:], key))
    return pieces


def apply_mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """Return ``data`` XORed with the 4-byte ``key`` repeated (RFC 6455 section 5.3).

    In C when the optional accelerator was built (``_mask.c``), else pure Python (big-integer
    XOR, in :data:`MASK_PIECE` pieces for large inputs). Masking is its own inverse.
    """
    if len(key) != 4:
        raise ValueError("a masking key is 4 bytes")
    length = len(data)
    if not length:
        return b""
    if _c_mask is not None:
        return _c_mask(data, key)
    return apply_mask_pure(data, key)


def apply_mask_pure(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """:func:`apply_mask` in pure Python, whether or not the C accelerator was built."""
    length = len(data)
    if length <= MASK_PIECE:
        return _mask_small(data, key)
    view = memoryview(data)
    return b"".join(
        [
            _mask_small(view[start : start + MASK_PIECE], key)
            for start in range(0, length, MASK_PIECE)
        ]
    )


#: Masking keys are cut from one ``os.urandom`` call per 1,024 frames (a system call per frame
#: costs more than the rest of a small frame). ``next()`` on the C iterator is atomic, so no
#: two frames, in any thread, get the same key.
_KEY_POOL_SIZE = 4096
_keys: Iterator[tuple[int]] = iter(())
# Keys as little-endian ints: the masking arithmetic wants the int, and packing it back
# little-endian gives the same 4 bytes for the header.
_key_struct = struct.Struct("<I")
#: Payloads from this size on are returned as buffers of their own, never joined to the
#: header (joining copies them once more).
SEPARATE_PAYLOAD = 16 * 1024


def _take_key() -> int:
    """A key (as a little-endian int) from a fresh pool (the current one is spent)."""
    global _keys  # noqa: PLW0603 - the pool is refilled in place of the spent iterator
    _keys = _key_struct.iter_unpack(os.urandom(_KEY_POOL_SIZE))
    return next(_keys)[0]


def serialize_frame(
    opcode: int,
    payload: bytes | bytearray | memoryview,
    *,
    fin: bool,
    rsv1: bool = False,
    mask: bool = True,
) -> list[bytes]:
    """Serialize one frame, data or control; a client masks with a fresh random key.

    Returns the frame as buffers to write in order: one buffer for a payload below
    :data:`SEPARATE_PAYLOAD` bytes; otherwise the header, then the (masked) payload in
    :data:`MASK_PIECE` pieces, so a large payload is never joined to its header.
    """
    length = len(payload)
    first = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    if mask:
        pooled = next(_keys, None)
        key_int = _take_key() if pooled is None else pooled[0]
        if length < 126:  # the common small frame: one buffer, masked as one integer
            masked = _from_bytes(payload, "little") ^ key_int * _REPEAT[length]
            if length & 3:  # the repeated key is longer than the payload: cut it
                masked &= _LOW_BYTES[length]
            return [
                _pack_tiny_masked(first, 0x80 | length, key_int) + masked.to_bytes(length, "little")
            ]
        key = key_int.to_bytes(4, "little")
        if length < 65536:
            header = _pack_short_masked(first, 0xFE, length, key)
        else:
            header = _pack_long_masked(first, 0xFF, length, key)
        if _c_mask is not None:
            if length < SEPARATE_PAYLOAD:
                return [header + _c_mask(payload, key)]
            if length <= MASK_PIECE:
                return [header, _c_mask(payload, key)]
            # In pieces in C too: pieces under the allocator's mmap threshold are recycled,
            # while one fresh 1 MiB buffer per frame cost 256 page faults (~0.5 ms).
            view = memoryview(payload)
            return [
                header,
                *[
                    _c_mask(view[start : start + MASK_PIECE], key)
                    for start in range(0, length, MASK_PIECE)
                ],
            ]
        if length < SEPARATE_PAYLOAD:
            return [header + _mask_small(payload, key)]
        return [header, *_mask_pieces(payload, key)]
    if length < 126:
        header = bytes((first, length))
    elif length < 65536:
        header = _pack_short(first, 126, length)
    else:
        header = _pack_long(first, 127, length)
    if length < SEPARATE_PAYLOAD:
        return [header + payload]
    return [header, bytes(payload)]
