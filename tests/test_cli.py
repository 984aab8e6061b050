"""The CLI, driven through a pipe as a script would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import trio

from .rawserver import RawPeer, close_payload

TIMEOUT = 60  # generous: a loaded CI machine must not fail these


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_mws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_embedded_echo_through_a_pipe() -> None:
    result = run_cli(stdin="hello\nwörld\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "wörld", ""]
    assert "embedded echo server on ws://127.0.0.1:" in result.stderr


def test_binary_lines() -> None:
    result = run_cli("--binary", stdin="AB\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "<binary 2 bytes: 41 42>"


def test_protocol_is_negotiated_with_the_embedded_server() -> None:
    result = run_cli("--protocol", "chat.v1", stdin="")
    assert result.returncode == 0, result.stderr
    assert "(protocol chat.v1)" in result.stderr


def test_bad_arguments_exit_2_before_any_io() -> None:
    for args in (["http://example.org/"], ["-H", "no colon"], ["-H", "Host: x"], ["-p", "a b"]):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr


def test_refused_port_exits_1_with_status() -> None:
    result = run_cli("ws://127.0.0.1:1/")
    assert result.returncode == 1
    assert "CANNOT_CONNECT" in result.stderr
    assert "Traceback" not in result.stderr


async def test_ctrl_d_closes_with_1000_and_sends_headers(raw_server: Callable[..., Any]) -> None:
    seen: dict[str, Any] = {}

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        seen["header"] = peer.request_header("X-Test")
        fin, opcode, payload = await peer.read_frame()
        seen["message"] = (fin, opcode, payload)
        seen["close"] = await peer.read_close()
        await peer.send(b"\x88\x02" + close_payload(1000))
        await peer.stream.aclose()

    url = await raw_server(handler)
    result = await trio.to_thread.run_sync(
        lambda: run_cli(url, "-H", "X-Test: yes", "--wait", "0", stdin="one line\n")
    )
    assert result.returncode == 0, result.stderr
    assert seen == {"header": "yes", "message": (True, 1, b"one line"), "close": 1000}
