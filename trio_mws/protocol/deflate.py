"""permessage-deflate (RFC 7692) for the client side, on the standard library's zlib.

The client offers ``permessage-deflate; client_max_window_bits``, parses the server's answer
strictly (:func:`parse_answer`), and gets the negotiated :class:`DeflateParameters`, from which
the engine builds one :class:`Compressor` and one :class:`Decompressor` per connection.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass

__all__ = [
    "CLIENT_OFFER",
    "MEM_LEVEL",
    "Compressor",
    "Decompressor",
    "DeflateParameters",
    "parse_answer",
]

#: The extension name (RFC 7692 section 7).
EXTENSION_NAME = "permessage-deflate"
#: The ``Sec-WebSocket-Extensions`` request header value: we accept any window size the
#: server asks us to compress with.
CLIENT_OFFER = f"{EXTENSION_NAME}; client_max_window_bits"

#: zlib memLevel of the compressor (1-9; zlib's default is 8). 5 uses 16 KiB of hash tables
#: per connection instead of 128 KiB, and websockets measured it as the knee of the
#: speed/ratio curve for typical WebSocket messages; it only affects our sending side.
MEM_LEVEL = 5

#: The end of a sync flush, which the sender strips from each message (RFC 7692 7.2.1) and
#: the receiver appends before inflating the message's end (7.2.2).
SYNC_TAIL = b"\x00\x00\xff\xff"

_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_BITS = ("server_max_window_bits", "client_max_window_bits")
_WINDOW = re.compile(r"[1-9][0-9]?")  # RFC 7692 section 7.1.2: no leading zeros
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """The parameters the server accepted (RFC 7692 section 7.1).

    ``server_no_context_takeover`` / ``client_no_context_takeover`` (bool, default False):
    the server / we reset the compression context after each message.
    ``server_max_window_bits`` / ``client_max_window_bits`` (int 8-15, default 15): the LZ77
    window of the server's / our compressor, as base-2 logarithm of bytes.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


def parse_answer(value: str) -> DeflateParameters:
    """Parse the server's ``Sec-WebSocket-Extensions`` response header value.

    Raises :class:`ValueError` with a clear message for anything we did not offer or that RFC
    7692 forbids: another extension, several extensions, an unknown or repeated parameter, a
    flag with a value, a window size outside 8-15 or with leading zeros, or
    ``client_max_window_bits`` without a value.
    """
    extensions = value.split(",")
    if len(extensions) != 1:
        raise ValueError(f"the server accepted several extensions: {value!r}")
    name, *raw_params = (part.strip() for part in extensions[0].split(";"))
    if name != EXTENSION_NAME:
        raise ValueError(f"the server accepted an extension we did not offer: {name!r}")
    settings: dict[str, bool | int] = {}
    for raw in raw_params:
        key, eq, raw_value = (part.strip() for part in raw.partition("="))
        if not _TOKEN.fullmatch(key):
            raise ValueError(f"malformed permessage-deflate parameter: {raw!r}")
        if key in settings:
            raise ValueError(f"repeated permessage-deflate parameter: {key}")
        if key in _FLAGS:
            if eq:
                raise ValueError(f"permessage-deflate parameter {key} takes no value")
            settings[key] = True
        elif key in _BITS:
            if len(raw_value) >= 2 and raw_value[0] == raw_value[-1] == '"':
                raw_value = raw_value[1:-1]
            if not eq or not _WINDOW.fullmatch(raw_value) or not 8 <= int(raw_value) <= 15:
                raise ValueError(f"permessage-deflate parameter {key} needs a value in 8-15")
            settings[key] = int(raw_value)
        else:
            raise ValueError(f"unknown permessage-deflate parameter: {key}")
    return DeflateParameters(**settings)  # type: ignore[arg-type]


def _zlib_window(bits: int) -> int:
    # For decompression: zlib's smallest raw window is 9 bits, and it decodes what an 8-bit
    # window wrote.
    return -max(9, bits)


class Compressor:
    """Compresses our outgoing messages frame by frame, honouring
    ``client_no_context_takeover`` and ``client_max_window_bits`` (9-15: zlib has no 8-bit
    raw window, so the engine sends uncompressed messages when the server asks for 8)."""

    __slots__ = ("_compressor", "_new", "_reset")

    def __init__(self, parameters: DeflateParameters) -> None:
        wbits = _zlib_window(parameters.client_max_window_bits)
        self._new = functools.partial(
            zlib.compressobj, zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, wbits, MEM_LEVEL
        )
        self._reset = parameters.client_no_context_takeover
        self._compressor = self._new()

    def compress(self, payload: bytes | bytearray | memoryview, fin: bool) -> bytes:
        """One frame's payload, compressed and flushed; on the message's last frame, without
        the 4-byte sync tail (RFC 7692 section 7.2.1)."""
        compressor = self._compressor
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            data = data[:-4]
            if self._reset:
                self._compressor = self._new()
        return data


class Decompressor:
    """Inflates the server's compressed messages, bounded: every call says how many bytes it
    may return at most, and input that would inflate to more stays in :attr:`unconsumed_tail`
    (zlib's own bound, so the input is never sliced by hand). Honours
    ``server_no_context_takeover`` and ``server_max_window_bits``; control frames interleaved
    between a message's frames never touch its state."""

    __slots__ = ("_decompressor", "_reset", "_wbits")

    def __init__(self, parameters: DeflateParameters) -> None:
        self._wbits = _zlib_window(parameters.server_max_window_bits)
        self._reset = parameters.server_no_context_takeover
        self._decompressor = zlib.decompressobj(self._wbits)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        """Inflate ``data``, returning at most ``max_length`` bytes (0: no bound). Raises
        :class:`zlib.error` for invalid data. When the result is ``max_length`` bytes long,
        more output may be pending: call again with :attr:`unconsumed_tail`."""
        return self._decompressor.decompress(data, max_length)

    @property
    def unconsumed_tail(self) -> bytes:
        """Input that a bounded :meth:`decompress` left unprocessed (bytes)."""
        return self._decompressor.unconsumed_tail

    def end_message(self) -> None:
        """The message ended: reset the context when the server does not keep it, or when the
        server ended its deflate stream (a final block: its window is gone for the next
        message, and zlib would otherwise ignore all later input)."""
        if self._reset or self._decompressor.eof:
            self._decompressor = zlib.decompressobj(self._wbits)
