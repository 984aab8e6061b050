"""BandwidthStatistics from the kernel's TCP_INFO, checked against linux/tcp.h's layout.

The reference is a ctypes mirror of ``struct tcp_info`` (linux/include/uapi/linux/tcp.h) up to
``tcpi_delivery_rate``, read from a real loopback TCP connection that carried some traffic.
"""

from __future__ import annotations

import ctypes
import socket
import sys

import pytest

from trio_mws.information import read_bandwidth

u8, u32, u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_uint64


class TcpInfo(ctypes.Structure):
    """``struct tcp_info`` as linux/tcp.h declares it (the bit fields as whole bytes)."""

    _fields_ = [
        *((name, u8) for name in (
            "state", "ca_state", "retransmits", "probes", "backoff", "options",
            "wscale", "app_limited_fastopen",
        )),
        *((name, u32) for name in (
            "rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans",
            "fackets", "last_data_sent", "last_ack_sent", "last_data_recv", "last_ack_recv",
            "pmtu", "rcv_ssthresh", "rtt", "rttvar", "snd_ssthresh", "snd_cwnd", "advmss",
            "reordering", "rcv_rtt", "rcv_space", "total_retrans",
        )),
        *((name, u64) for name in (
            "pacing_rate", "max_pacing_rate", "bytes_acked", "bytes_received",
        )),
        *((name, u32) for name in (
            "segs_out", "segs_in", "notsent_bytes", "min_rtt", "data_segs_in", "data_segs_out",
        )),
        ("delivery_rate", u64),
    ]  # fmt: skip


def test_layout_matches_linux_tcp_h() -> None:
    # Offsets as linux/tcp.h lays them out (8 bytes of u8, then u32s, then u64s...).
    assert TcpInfo.rtt.offset == 68
    assert TcpInfo.rttvar.offset == 72
    assert TcpInfo.pacing_rate.offset == 104
    assert TcpInfo.delivery_rate.offset == 160


@pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="TCP_INFO and struct tcp_info exist on Linux only; elsewhere the statistics are zero",
)
def test_instability_is_the_kernels_rttvar() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        server, _ = listener.accept()
        with client, server:
            server.settimeout(10)
            for _ in range(20):  # round trips give the kernel RTT samples
                client.sendall(b"x" * 1000)
                received = 0
                while received < 1000:
                    received += len(server.recv(4096))
                server.sendall(b"y")
                assert client.recv(1) == b"y"
            stats = read_bandwidth(client)
            raw = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, ctypes.sizeof(TcpInfo))
    info = TcpInfo.from_buffer_copy(raw.ljust(ctypes.sizeof(TcpInfo), b"\0"))
    # The connection is idle: the kernel's figures did not move between the two reads.
    assert info.rttvar != info.rtt  # else this test could not tell the two apart
    assert stats.outbound_bits_per_second_instability == info.rttvar
    assert stats.inbound_bits_per_second_instability == info.rttvar
    assert stats.inbound_bits_per_second == info.delivery_rate * 8
    if info.pacing_rate < 2**63:
        assert stats.outbound_bits_per_second == info.pacing_rate * 8
