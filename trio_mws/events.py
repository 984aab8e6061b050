"""The events a :class:`MessageWebSocket` delivers."""

from __future__ import annotations

from dataclasses import dataclass

from .enums import SocketMessageType

__all__ = ["Closed", "MessageReceived"]


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message, or in PARTIAL_MESSAGE mode a piece of one.

    ``is_message_complete`` is True on the last (in FULL_MESSAGE mode the only) event of a
    message. UTF8 data always ends on a character boundary, so :attr:`text` never fails.
    """

    message_type: SocketMessageType
    data: bytes
    is_message_complete: bool = True

    @property
    def text(self) -> str:
        """The data decoded as UTF-8."""
        return self.data.decode("utf-8")


@dataclass(frozen=True, slots=True)
class Closed:
    """The close handshake completed: ``code`` and ``reason`` are the server's close frame's.

    ``code`` is 1005 when the frame carried no code. ``initiated_locally`` tells who sent the
    first close frame.
    """

    code: int
    reason: str
    initiated_locally: bool
