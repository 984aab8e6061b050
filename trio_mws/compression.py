"""permessage-deflate (RFC 7692) negotiation for the client side.

The compression itself is wsproto's. What wsproto does not do, we do: check the server's
answer strictly, and bound decompression. The bound works by feeding the engine at most
:data:`COMPRESSED_FEED_SIZE` bytes at a time while compression is on; since deflate expands at
most 1032:1, one feed can never produce more than ~16.5 MiB, and the reader checks
``max_message_size`` after every feed.
"""

from __future__ import annotations

from wsproto.extensions import PerMessageDeflate

__all__ = ["COMPRESSED_FEED_SIZE", "ClientPerMessageDeflate"]

#: Largest slice of received bytes handed to the engine at once when compression is on.
COMPRESSED_FEED_SIZE = 16 * 1024

_FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
_BITS = ("server_max_window_bits", "client_max_window_bits")


class ClientPerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with a client offer and a strict check of the answer."""

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
                if not value.isdigit() or not 8 <= int(value) <= 15:
                    return False
                # zlib cannot use an 8-bit window for raw deflate: 9 is its smallest, and
                # a 9-bit decoder reads what an 8-bit encoder writes.
                setattr(self, name, max(9, int(value)))
            else:
                return False
        self._enabled = True
        return True
