"""The message size limit, enforced as soon as a frame header announces too much.

wsproto enforces no size limit. Counting delivered bytes is not enough on its own: a server can
announce a 2^62-byte frame and trickle it. :class:`MessageSizeGuard` hooks into the engine's
extension interface, sees every frame header, and fails the connection with 1009 the moment
the announced (uncompressed) size of a message passes ``max_message_size``.
"""

from __future__ import annotations

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ["MessageSizeGuard"]

_NO_BITS = RsvBits(False, False, False)


class MessageSizeGuard(Extension):
    """An always-on engine "extension" that only checks announced message sizes.

    Compressed messages are not judged by their compressed size here; the reader checks their
    decompressed size as it arrives.
    """

    name = "trio-mws-size-guard"

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._announced = 0
        self._compressed = False

    def enabled(self) -> bool:
        """Always on (it is never negotiated)."""
        return True

    def offer(self) -> bool:
        """Never offered to the server."""
        return False

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        """Add the frame's length to its message's and fail with 1009 beyond the limit."""
        if opcode.iscontrol():
            return _NO_BITS
        if opcode is not Opcode.CONTINUATION:
            self._announced = 0
            self._compressed = rsv.rsv1
        self._announced += payload_length
        if not self._compressed and self._announced > self._limit:
            return CloseReason.MESSAGE_TOO_BIG
        return _NO_BITS
