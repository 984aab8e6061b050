"""What the engine reports about received bytes: frozen, slotted dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from ..enums import SocketMessageType

__all__ = [
    "CloseReceived",
    "DataReceived",
    "Event",
    "PingReceived",
    "PongReceived",
    "ProtocolError",
]


@dataclass(frozen=True, slots=True, init=False)
class DataReceived:
    """Message data. FULL mode: one event per message, reassembled, ``fin`` True. PARTIAL
    mode: pieces as data arrives, at most ``piece_limit`` bytes each (text pieces end on
    character boundaries); ``fin`` is True on the last piece of a message.

    ``message_type``: :class:`SocketMessageType` of the message; ``data``: the payload bytes
    (uncompressed); ``fin``: whether the message ends with this event.
    """

    message_type: SocketMessageType
    data: bytes
    fin: bool

    # Hand-written because the engine builds one per message on its hottest path: the
    # generated frozen __init__ costs twice as much (it calls object.__setattr__ per field).
    def __init__(self, message_type: SocketMessageType, data: bytes, fin: bool) -> None:
        _set_message_type(self, message_type)
        _set_data(self, data)
        _set_fin(self, fin)


# The slots' own descriptors: they set a field without going through the frozen __setattr__
# (the engine's fast path uses them directly, saving the __init__ call).
_set_message_type = DataReceived.__dict__["message_type"].__set__
_set_data = DataReceived.__dict__["data"].__set__
_set_fin = DataReceived.__dict__["fin"].__set__


@dataclass(frozen=True, slots=True)
class PingReceived:
    """The server sent a ping with ``payload`` (bytes, at most 125). The engine has already
    queued the pong, unless a close frame had been sent."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    """The server sent a pong with ``payload`` (bytes, at most 125)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The server's valid close frame: ``code`` (int; 1005 for an empty frame) and ``reason``
    (str, possibly empty). If no close frame had been sent, the engine has already queued the
    echo (the same code). Bytes after a close frame are ignored."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The engine failed the connection: the server broke the protocol (1002), sent invalid
    UTF-8 or invalid compressed data (1007), or a message over the limit (1009).

    The engine has already queued a close frame with ``code`` (int) and ``reason`` (str, the
    close frame's reason, e.g. ``"message too big"``); ``message`` (str) describes what
    happened, for the exception. No events follow; later received bytes are ignored.
    """

    code: int
    reason: str
    message: str


#: Any event of :meth:`ClientEngine.events_received`.
Event = DataReceived | PingReceived | PongReceived | CloseReceived | ProtocolError
