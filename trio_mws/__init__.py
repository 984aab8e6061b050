"""trio_mws: a message-oriented WebSocket client for trio, shaped like Windows'
``MessageWebSocket``."""

from ._version import __version__
from .certificates import ServerCustomValidationRequest
from .control import ClientCertificate, MessageWebSocketControl, PasswordCredential
from .entry_points import open_message_websocket, run_message_websocket
from .enums import (
    ChainValidationResult,
    MessageWebSocketReceiveMode,
    SocketMessageType,
    SocketSslErrorSeverity,
    WebErrorStatus,
    WebSocketState,
)
from .errors import (
    CertificateError,
    CertificateRejected,
    ConnectError,
    ConnectionClosed,
    HandshakeError,
    MessageTooBig,
    NetworkAccessDenied,
    WebSocketError,
)
from .events import Closed, MessageReceived
from .information import BandwidthStatistics, HandshakeResponse, MessageWebSocketInformation
from .message_websocket import MessageWebSocket
from .network_access import NetworkAccess
from .reconnecting import run_reconnecting
from .retry import RetryPolicy
from .timings import ConnectTimings

__all__ = [
    "BandwidthStatistics",
    "CertificateError",
    "CertificateRejected",
    "ChainValidationResult",
    "ClientCertificate",
    "Closed",
    "ConnectError",
    "ConnectTimings",
    "ConnectionClosed",
    "HandshakeError",
    "HandshakeResponse",
    "MessageReceived",
    "MessageTooBig",
    "MessageWebSocket",
    "MessageWebSocketControl",
    "MessageWebSocketInformation",
    "MessageWebSocketReceiveMode",
    "NetworkAccess",
    "NetworkAccessDenied",
    "PasswordCredential",
    "RetryPolicy",
    "ServerCustomValidationRequest",
    "SocketMessageType",
    "SocketSslErrorSeverity",
    "WebErrorStatus",
    "WebSocketError",
    "WebSocketState",
    "__version__",
    "open_message_websocket",
    "run_message_websocket",
    "run_reconnecting",
]
