"""Process helpers: server CPU time, RSS, file-descriptor limit, CPU pinning (Linux only)."""

from __future__ import annotations

import os
import resource
import socket
import time

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def system_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy so far, hypervisor steal included (10 ms ticks)."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal ...
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def background_load(seconds: float = 1.0) -> float:
    """Busy CPUs (in cores) over ``seconds`` while this process sleeps: other processes' load."""
    busy0 = system_busy_seconds()
    time.sleep(seconds)
    return (system_busy_seconds() - busy0) / seconds


def server_cpu_seconds(port: int, host: str = "127.0.0.1") -> float:
    """Ask the bench echo server's CPU-time port for its CPU seconds so far (blocking)."""
    with socket.create_connection((host, port)) as sock:
        chunks = []
        while chunk := sock.recv(64):
            chunks.append(chunk)
    return float(b"".join(chunks))


def rss_bytes() -> int:
    """Return the resident set size of the current process, in bytes."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


def raise_nofile_limit(wanted: int = 65536) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (capped by the hard limit).

    Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def pin_to_cpu(cpu: int | None) -> None:
    """Pin the current process to one CPU (no-op for ``None``)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
