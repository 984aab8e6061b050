"""The events a :class:`MessageWebSocket` delivers."""

from __future__ import annotations

from dataclasses import dataclass

from .enums import SocketMessageType

__all__ = ["Closed", "MessageReceived"]


@dataclass(frozen=True, slots=True, init=False)
class MessageReceived:
    """A message, or in PARTIAL_MESSAGE mode a piece of one.

    ``is_message_complete`` is True on the last (in FULL_MESSAGE mode the only) event of a
    message. UTF8 data always ends on a character boundary, so :attr:`text` never fails.
    """

    #: :class:`SocketMessageType`: ``UTF8`` for a text message, ``BINARY`` otherwise.
    message_type: SocketMessageType
    #: The payload (after decompression); for UTF8, valid UTF-8 ending on a character
    #: boundary.
    data: bytes
    #: ``True`` on the last (in FULL_MESSAGE mode the only) event of a message.
    is_message_complete: bool = True

    # Hand-written: one is made per message received, and the generated frozen __init__
    # costs twice as much (it calls object.__setattr__ per field).
    def __init__(
        self, message_type: SocketMessageType, data: bytes, is_message_complete: bool = True
    ) -> None:
        _set_message_type(self, message_type)
        _set_data(self, data)
        _set_is_message_complete(self, is_message_complete)

    @property
    def text(self) -> str:
        """The data decoded as UTF-8."""
        return self.data.decode("utf-8")


# The slots' own descriptors: they set a field without the frozen class's __setattr__.
_set_message_type = MessageReceived.__dict__["message_type"].__set__
_set_data = MessageReceived.__dict__["data"].__set__
_set_is_message_complete = MessageReceived.__dict__["is_message_complete"].__set__


@dataclass(frozen=True, slots=True)
class Closed:
    """The close handshake completed: ``code`` and ``reason`` are the server's close frame's.

    ``code`` is 1005 when the frame carried no code. ``initiated_locally`` tells who sent the
    first close frame.
    """

    #: ``int`` close code of the server's close frame (1005 when it carried none).
    code: int
    #: ``str`` close reason of the server's close frame ("" when none).
    reason: str
    #: ``True`` when the client sent the first close frame (``close()``), ``False`` when the
    #: server did.
    initiated_locally: bool
