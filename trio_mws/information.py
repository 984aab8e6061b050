"""What is known about a connection (``MessageWebSocketInformation``)."""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .enums import ChainValidationResult, SocketSslErrorSeverity

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    from .timings import ConnectTimings

__all__ = ["BandwidthStatistics", "HandshakeResponse", "MessageWebSocketInformation"]


@dataclass(frozen=True, slots=True)
class BandwidthStatistics:
    """Windows' ``BandwidthStatistics``, from the kernel's TCP_INFO where available (Linux);
    all zero and ``False`` elsewhere."""

    #: ``int`` bits per second: the kernel's pacing rate for the connection.
    outbound_bits_per_second: int = 0
    #: ``int`` bits per second: the kernel's delivery rate estimate.
    inbound_bits_per_second: int = 0
    #: ``int`` microseconds: the round-trip time's variation, as a measure of instability.
    outbound_bits_per_second_instability: int = 0
    #: ``int`` microseconds: the same variation, for the inbound direction.
    inbound_bits_per_second_instability: int = 0
    #: ``bool``: always ``False`` (the kernel reports no such thing).
    outbound_bandwidth_peaked: bool = False
    #: ``bool``: always ``False`` (the kernel reports no such thing).
    inbound_bandwidth_peaked: bool = False


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """The server's answer to the upgrade request."""

    #: ``int`` HTTP status code (101 for an accepted upgrade).
    status_code: int
    #: ``str`` reason phrase of the status line.
    reason: str
    #: Every header as ``(name, value)`` in the order received.
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name`` (case-insensitive), or ``default``."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default


# struct tcp_info (linux/tcp.h): the fields we read, by byte offset (tcpi_rtt is at 68).
_TCPI_RTTVAR = 72  # u32, microseconds
_TCPI_PACING_RATE = 104  # u64, bytes per second
_TCPI_DELIVERY_RATE = 160  # u64, bytes per second (Linux 4.9+)
_TCP_INFO_LEN = 232


def read_bandwidth(sock: socket.socket | None) -> BandwidthStatistics:
    """Estimate bandwidth from TCP_INFO (Linux); all zero elsewhere or on any failure."""
    if sock is None or not sys.platform.startswith("linux"):
        return BandwidthStatistics()
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):
        return BandwidthStatistics()
    if len(raw) < _TCPI_DELIVERY_RATE + 8:
        return BandwidthStatistics()
    (rttvar_us,) = struct.unpack_from("I", raw, _TCPI_RTTVAR)
    (pacing,) = struct.unpack_from("Q", raw, _TCPI_PACING_RATE)
    (delivery,) = struct.unpack_from("Q", raw, _TCPI_DELIVERY_RATE)
    pacing_bits = 0 if pacing >= 2**63 else pacing * 8  # ~0 means "unlimited"
    delivery_bits = delivery * 8
    return BandwidthStatistics(
        outbound_bits_per_second=pacing_bits,
        inbound_bits_per_second=delivery_bits,
        outbound_bits_per_second_instability=rttvar_us,
        inbound_bits_per_second_instability=rttvar_us,
        outbound_bandwidth_peaked=False,
        inbound_bandwidth_peaked=False,
    )


@dataclass(slots=True)
class MessageWebSocketInformation:
    """Read-only facts about a connection; readable at any time (``None``/0 before connect)."""

    #: ``(host, port)`` of the client's end of the TCP connection, or ``None``.
    local_address: tuple[str, int] | None = None
    #: ``(host, port)`` of the server's end (the proxy's, through a proxy), or ``None``.
    remote_address: tuple[str, int] | None = None
    #: The negotiated subprotocol, or ``None`` when the server chose none.
    protocol: str | None = None
    #: The server's leaf certificate (``cryptography.x509.Certificate``), ``wss://`` only.
    server_certificate: Certificate | None = None
    #: The other certificates of the chain the server sent, in its order.
    server_intermediate_certificates: tuple[Certificate, ...] = ()
    #: Every :class:`ChainValidationResult` found in the server's chain (empty when valid).
    server_certificate_errors: tuple[ChainValidationResult, ...] = ()
    #: ``NONE`` for a valid chain, ``IGNORABLE`` when every error was tolerated by
    #: ``control.ignorable_server_certificate_errors``, ``FATAL`` otherwise.
    server_certificate_error_severity: SocketSslErrorSeverity = SocketSslErrorSeverity.NONE
    #: ``float`` seconds: the last keepalive (or :meth:`~MessageWebSocket.ping`) round trip,
    #: or ``None`` before the first.
    latency: float | None = None
    #: ``int`` whole messages sent (a fragmented message counts once, at its final frame).
    messages_sent: int = 0
    #: ``int`` whole messages received (in PARTIAL_MESSAGE mode, at their last piece).
    messages_received: int = 0
    #: ``int`` payload bytes sent, as the application gave them (before compression).
    bytes_sent: int = 0
    #: ``int`` payload bytes received, as the application gets them (after decompression).
    bytes_received: int = 0
    #: :class:`~trio_mws.ConnectTimings`: seconds spent in DNS, TCP, proxy, TLS and the
    #: upgrade, and the total; ``None`` before a successful connect.
    timings: ConnectTimings | None = None
    _socket: socket.socket | None = field(default=None, repr=False)
    # The 101 response's head, raw: parsed when first asked for (idle sockets stay small).
    _handshake_head: bytes | None = field(default=None, repr=False)
    _handshake_response: HandshakeResponse | None = field(default=None, repr=False)

    @property
    def handshake_response(self) -> HandshakeResponse | None:
        """The server's answer to the upgrade request (``None`` before the upgrade)."""
        if self._handshake_response is None and self._handshake_head is not None:
            from .handshake import parse_head

            self._handshake_response = parse_head(self._handshake_head)
        return self._handshake_response

    @property
    def bandwidth_statistics(self) -> BandwidthStatistics:
        """Bandwidth estimates from the kernel (all zero where unavailable)."""
        return read_bandwidth(self._socket)


def attach_connection(
    info: MessageWebSocketInformation, sock: socket.socket, handshake_head: bytes
) -> None:
    """Give ``info`` what it reads on demand: the TCP socket (bandwidth statistics) and the
    101 response's raw head (parsed when first asked for: idle sockets stay small)."""
    info._socket = sock
    info._handshake_head = handshake_head
