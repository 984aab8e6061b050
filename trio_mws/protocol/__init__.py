"""The WebSocket protocol, sans I/O: frames, permessage-deflate, events and the client engine.

Imports neither trio, nor sockets, nor a clock: bytes and calls in, events and bytes out.
"""

from .deflate import CLIENT_OFFER, DeflateParameters, parse_answer
from .engine import DEFAULT_MAX_FRAGMENTS, EVENT_BUDGET, ClientEngine, valid_close_code
from .events import (
    CloseReceived,
    DataReceived,
    Event,
    PingReceived,
    PongReceived,
    ProtocolError,
)
from .frames import apply_mask, serialize_frame

__all__ = [
    "CLIENT_OFFER",
    "DEFAULT_MAX_FRAGMENTS",
    "EVENT_BUDGET",
    "ClientEngine",
    "CloseReceived",
    "DataReceived",
    "DeflateParameters",
    "Event",
    "PingReceived",
    "PongReceived",
    "ProtocolError",
    "apply_mask",
    "parse_answer",
    "serialize_frame",
    "valid_close_code",
]
