"""The outgoing frame writer: a lean serializer for data frames.

wsproto parses every incoming frame and owns the protocol state; outgoing *data* frames are
serialized here instead, because wsproto's path copies the payload several times and masks it
in pure Python. Masking uses a compiled masker when one is installed (``websockets.speedups``,
SIMD), else big-integer XOR in Python.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

__all__ = ["OP_BINARY", "OP_CONTINUATION", "OP_TEXT", "encode_frame", "mask"]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


def _mask_python(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (RFC 6455 section 5.3)."""
    length = len(payload)
    if not length:
        return b""
    repeated = key * (length // 4 + 1)
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(repeated[:length], "little")
    return masked.to_bytes(length, "little")


def _load_masker() -> Callable[[bytes, bytes], bytes]:
    try:  # SIMD masking, the fastest we know of, when websockets is installed
        from websockets.speedups import apply_mask
    except ImportError:  # pragma: no cover - depends on the environment
        return _mask_python

    def mask_with_websockets(payload: bytes, key: bytes) -> bytes:
        return apply_mask(payload, key)

    return mask_with_websockets


#: The masking function in use (C when available).
mask: Callable[[bytes, bytes], bytes] = _load_masker()

_SMALL = 1024  # below this, masking in Python is cheaper than calling out


def encode_frame(
    opcode: int, payload: bytes, fin: bool, rsv1: bool = False
) -> tuple[bytes] | tuple[bytes, bytes]:
    """One masked client frame: header, fresh random key, masked payload.

    A small frame comes as one part; a large one as two (header and key, masked payload),
    so that the payload is never copied again to be joined.
    """
    first = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    length = len(payload)
    key = os.urandom(4)
    if length < 126:
        header = bytes((first, 0x80 | length))
    elif length < 65536:
        header = _pack_short(first, 0xFE, length)
    else:
        header = _pack_long(first, 0xFF, length)
    if length < _SMALL:
        return (header + key + _mask_python(payload, key),)
    return header + key, mask(payload, key)
