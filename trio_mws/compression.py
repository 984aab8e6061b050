"""permessage-deflate (RFC 7692) for the client side.

The compression itself is wsproto's. What wsproto does not do, we do: check the server's
answer strictly, keep a compressed message's state across interleaved control frames, and
bound decompression. The bound works by feeding the engine small slices of received bytes
while compression is on (:func:`feed_size`): deflate expands at most 1032:1, so one slice can
never inflate to more than the chunk limit, and the reader checks sizes after every slice.
"""

from __future__ import annotations

import re
import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ["ClientPerMessageDeflate", "feed_size"]

#: Deflate's worst-case expansion: one input byte never yields more output than this.
MAX_EXPANSION = 1032
#: Largest slice of received bytes handed to the engine at once when compression is on.
MAX_FEED = 4 * 1024
#: Largest piece of decompressed data PARTIAL_MESSAGE mode produces per slice.
PARTIAL_INFLATE_LIMIT = 1024 * 1024

#: zlib memLevel of the compressor (1-9; zlib's default is 8).
MEM_LEVEL = 5

_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_BITS = ("server_max_window_bits", "client_max_window_bits")
_WINDOW = re.compile(r"[1-9][0-9]?")  # RFC 7692 section 7.1.2: no leading zeros
_NO_BITS = RsvBits(False, False, False)


def feed_size(inflate_limit: int | None) -> int:
    """Slice size so that one slice inflates to at most ``inflate_limit`` bytes."""
    if inflate_limit is None:
        return MAX_FEED
    return max(64, min(MAX_FEED, inflate_limit // MAX_EXPANSION))


class ClientPerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with a client offer, a strict check of the answer, and
    control frames kept out of the message's compression state."""

    _in_control = False

    def offer(self) -> str:
        """The extension offer: we accept any window size the server asks us to use."""
        return f"{self.name}; client_max_window_bits"

    def accept_response(self, extension: str) -> bool:
        """Apply the server's accepted parameters; False when they are not valid."""
        seen: set[str] = set()
        for raw in extension.split(";")[1:]:
            name, eq, value = (part.strip() for part in raw.strip().partition("="))
            value = value.strip('"')
            if name in seen:
                return False
            seen.add(name)
            if name in _FLAGS:
                if eq:
                    return False
                setattr(self, name, True)
            elif name in _BITS:
                if not _WINDOW.fullmatch(value) or not 8 <= int(value) <= 15:
                    return False
                # zlib cannot use an 8-bit window for raw deflate: 9 is its smallest, and
                # a 9-bit decoder reads what an 8-bit encoder writes.
                setattr(self, name, max(9, int(value)))
            else:
                return False
        self._enabled = True
        return True

    # wsproto resets a message's "compressed" flag when any frame completes, including a
    # ping between two fragments; control frames must leave that state alone.

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        """Compress with a smaller compressor state than wsproto's default (memLevel 5: 16 KiB
        of hash tables instead of 128 KiB per connection), as websockets does."""
        if self._compressor is None and opcode in (Opcode.TEXT, Opcode.BINARY):
            self._compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.client_max_window_bits, MEM_LEVEL
            )
        return super().frame_outbound(proto, opcode, rsv, data, fin)

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        """Remember whether this frame is a control frame; check RSV1 as RFC 7692 says."""
        self._in_control = opcode.iscontrol()
        if self._in_control:
            return CloseReason.PROTOCOL_ERROR if rsv.rsv1 else _NO_BITS
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        """Inflate data frames' payload; control frames pass untouched."""
        if self._in_control:
            return data
        return super().frame_inbound_payload_data(proto, data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        """Finish a data frame; a control frame's end changes nothing."""
        if self._in_control:
            return None
        return super().frame_inbound_complete(proto, fin)
