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

__all__ = ["BandwidthStatistics", "HandshakeResponse", "MessageWebSocketInformation"]


@dataclass(frozen=True, slots=True)
class BandwidthStatistics:
    """Windows' ``BandwidthStatistics``, from the kernel's TCP_INFO where available."""

    outbound_bits_per_second: int = 0
    inbound_bits_per_second: int = 0
    outbound_bits_per_second_instability: int = 0
    inbound_bits_per_second_instability: int = 0
    outbound_bandwidth_peaked: bool = False
    inbound_bandwidth_peaked: bool = False


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """The server's answer to the upgrade request."""

    status_code: int
    reason: str
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

    local_address: tuple[str, int] | None = None
    remote_address: tuple[str, int] | None = None
    protocol: str | None = None
    server_certificate: Certificate | None = None
    server_intermediate_certificates: tuple[Certificate, ...] = ()
    server_certificate_errors: tuple[ChainValidationResult, ...] = ()
    server_certificate_error_severity: SocketSslErrorSeverity = SocketSslErrorSeverity.NONE
    latency: float | None = None
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
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
