"""What the engine does not check, checked from inside it: :class:`EngineGuard`.

wsproto enforces no size limit. Counting delivered bytes is not enough on its own: a server can
announce a 2^62-byte frame and trickle it. The guard hooks into the engine's extension
interface, sees every frame header, and fails the connection with 1009 the moment the announced
(uncompressed) size of a message passes ``max_message_size``.

It also lets through the one registered close code wsproto does not know, 1014 (Bad Gateway),
which the engine would otherwise treat as a protocol error.
"""

from __future__ import annotations

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

__all__ = ["EngineGuard"]

_NO_BITS = RsvBits(False, False, False)
BAD_GATEWAY = 1014
_BAD_GATEWAY_BYTES = BAD_GATEWAY.to_bytes(2, "big")
_STAND_IN = int(CloseReason.INTERNAL_ERROR).to_bytes(2, "big")


class EngineGuard(Extension):
    """An always-on engine "extension" (never negotiated) for size limits and close code 1014.

    Compressed messages are not judged by their compressed size here; the reader checks their
    decompressed size as it arrives.
    """

    name = "trio-mws-engine-guard"

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._announced = 0
        self._compressed = False
        self._close_frame = False
        #: Set when the server's close frame carried 1014 (shown to the engine as 1011).
        self.saw_bad_gateway = False

    def enabled(self) -> bool:
        """Always on."""
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
        """Add a data frame's length to its message's and fail with 1009 beyond the limit."""
        if opcode.iscontrol():
            self._close_frame = opcode is Opcode.CLOSE
            return _NO_BITS
        self._close_frame = False
        if self._limit is None:
            return _NO_BITS
        if opcode is not Opcode.CONTINUATION:
            self._announced = 0
            self._compressed = rsv.rsv1
        self._announced += payload_length
        if not self._compressed and self._announced > self._limit:
            return CloseReason.MESSAGE_TOO_BIG
        return _NO_BITS

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        """Show a 1014 close to the engine as 1011 (a control frame's payload comes whole)."""
        if self._close_frame and data[:2] == _BAD_GATEWAY_BYTES:
            self.saw_bad_gateway = True
            return _STAND_IN + data[2:]
        return data
