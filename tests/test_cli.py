"""The CLI, driven as its users drive it: through pipes as a script would, and through a
pseudo-terminal as a person would (real Ctrl-C and Ctrl-D bytes, turned into SIGINT and end of
input by the terminal's line discipline)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

import trio

import trio_mws

from .rawserver import RawPeer, close_payload, frame

TIMEOUT = 60  # generous: a loaded CI machine must not fail these

# The child becomes the session leader of the pseudo-terminal and takes it as its controlling
# terminal, so that the line discipline sends it SIGINT on Ctrl-C, as a shell would arrange.
_LAUNCH = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'trio_mws', *sys.argv[1:]])"
)


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_mws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def start_cli(*args: str) -> subprocess.Popen[str]:
    """The CLI with its standard input a pipe that stays open until the test closes it."""
    return subprocess.Popen(
        [sys.executable, "-m", "trio_mws", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_with_input_open(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of a CLI that must exit while its stdin is still open."""
    try:
        status = process.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        _out, err = process.communicate()
        raise AssertionError(f"still waiting for input: {err!r}") from None
    out, err = process.communicate()
    return status, out, err


class Terminal:
    """The CLI on a pseudo-terminal: ``type`` what a person types, ``expect`` what they see."""

    def __init__(self, *args: str) -> None:
        master, slave = os.openpty()
        attributes = termios.tcgetattr(slave)
        attributes[3] |= termios.ISIG | termios.ICANON | termios.ECHO  # a shell's defaults
        attributes[6][termios.VINTR] = b"\x03"
        attributes[6][termios.VEOF] = b"\x04"
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.raw = b""

    @property
    def screen(self) -> str:
        """Everything shown so far, with the terminal's CR LF line ends as LF."""
        return self.raw.decode(errors="replace").replace("\r\n", "\n")

    def _read(self, deadline: float) -> bool:
        """Read what is there (waiting until ``deadline``); False once the CLI is gone."""
        ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            return False
        self.raw += data
        return bool(data)

    def expect(self, text: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} not shown; screen: {self.screen!r}"
            assert self._read(deadline), f"exited before showing {text!r}: {self.screen!r}"

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self) -> int:
        """The exit status, once the CLI has exited (everything it showed is read)."""
        deadline = time.monotonic() + TIMEOUT
        while self._read(deadline):
            assert time.monotonic() < deadline, f"still running; screen: {self.screen!r}"
        return self.process.wait(TIMEOUT)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:  # a failed test: do not leave the CLI behind
            self.process.kill()
            self.process.wait()
        os.close(self.master)


# --- through a pipe, against the embedded echo server -------------------------------------


def test_embedded_echo_through_a_pipe() -> None:
    result = run_cli(stdin="hello\nwörld\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "wörld", ""]  # plain: no "< " marker on a pipe
    assert "embedded echo server on ws://127.0.0.1:" in result.stderr
    assert result.stderr.splitlines()[-1] == "closed: 1000 (normal closure)"
    assert "Ctrl-D" not in result.stderr  # the typing hint is for a terminal only


def test_binary_lines() -> None:
    result = run_cli("--binary", stdin="AB\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "<binary 2 bytes: 41 42>"


def test_protocol_is_negotiated_with_the_embedded_server() -> None:
    result = run_cli("--protocol", "chat.v1", stdin="")
    assert result.returncode == 0, result.stderr
    assert "(protocol chat.v1)" in result.stderr


def test_version_comes_from_the_package() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"trio-mws {trio_mws.__version__}"


def test_bad_arguments_exit_2_before_any_io() -> None:
    for args in (["http://example.org/"], ["-H", "no colon"], ["-H", "Host: x"], ["-p", "a b"]):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr
    result = run_cli("--no-such-option")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_refused_port_exits_1_with_one_line_and_its_status() -> None:
    result = run_cli("ws://127.0.0.1:1/")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("error: ")
    ]
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "(status CANNOT_CONNECT)" in result.stderr


def test_debug_shows_the_traceback_of_a_failure() -> None:
    result = run_cli("--debug", "ws://127.0.0.1:1/")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "(status CANNOT_CONNECT)" in result.stderr


def test_output_closed_by_its_reader_ends_quietly() -> None:
    # `… | trio-mws | head -1`: the reader of stdout goes away after one line.
    process = subprocess.Popen(
        [sys.executable, "-m", "trio_mws"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # nothing left to flush (and fail) once the CLI has gone
    )
    with process:
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        stdin = process.stdin

        def feed() -> None:
            try:
                stdin.write(b"echo me\n" * 50_000)  # far more output than a pipe buffers
            except BrokenPipeError:
                pass
            stdin.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        assert process.stdout.readline() == b"echo me\n"
        process.stdout.close()
        status = process.wait(TIMEOUT)
        feeder.join(TIMEOUT)
        err = process.stderr.read().decode()
    assert "Traceback" not in err
    assert "Exception ignored" not in err
    assert err.splitlines()[-2:] == ["standard output closed", "closed: 1000 (normal closure)"]
    assert status == 0


# --- through a pipe, against scripted servers ---------------------------------------------


async def test_ctrl_d_closes_with_1000_and_sends_headers(raw_server: Callable[..., Any]) -> None:
    seen: dict[str, Any] = {}

    async def handler(peer: RawPeer) -> None:
        await peer.accept()
        seen["header"] = peer.request_header("X-Test")
        fin, opcode, payload = await peer.read_frame()
        seen["message"] = (fin, opcode, payload)
        seen["close"] = await peer.read_close()
        await peer.send(frame(8, close_payload(1000)))
        await peer.stream.aclose()

    url = await raw_server(handler)
    result = await trio.to_thread.run_sync(
        lambda: run_cli(url, "-H", "X-Test: yes", "--wait", "0", stdin="one line\n")
    )
    assert result.returncode == 0, result.stderr
    assert seen == {"header": "yes", "message": (True, 1, b"one line"), "close": 1000}
    assert result.stderr.splitlines()[-1] == "closed: 1000 (normal closure)"


async def close_with_1008_after_first_message(peer: RawPeer) -> None:
    await peer.accept()
    await peer.read_frame()
    await peer.send(frame(8, close_payload(1008, b"no thanks")))
    await peer.read_close()
    await peer.stream.aclose()


async def test_server_closes_while_input_lines_remain(raw_server: Callable[..., Any]) -> None:
    url = await raw_server(close_with_1008_after_first_message)
    many_lines = "line\n" * 50_000  # still being sent when the close arrives
    result = await trio.to_thread.run_sync(lambda: run_cli(url, stdin=many_lines))
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "closed by server: 1008 (policy violation): no thanks"
    assert result.returncode == 1


async def test_server_closes_while_waiting_for_input(raw_server: Callable[..., Any]) -> None:
    url = await raw_server(close_with_1008_after_first_message)

    def talk() -> tuple[int, str, str]:
        process = start_cli(url)
        assert process.stdin is not None
        process.stdin.write("hello\n")
        process.stdin.flush()  # and the pipe stays open: the CLI must not wait for more
        return wait_with_input_open(process)

    status, _out, err = await trio.to_thread.run_sync(talk)
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "closed by server: 1008 (policy violation): no thanks"
    assert status == 1


async def test_connection_lost_after_input_ends_exits_1(raw_server: Callable[..., Any]) -> None:
    async def drop_after_first_message(peer: RawPeer) -> None:
        await peer.accept()
        await peer.read_frame()
        await peer.stream.aclose()  # no close frame

    url = await raw_server(drop_after_first_message)
    result = await trio.to_thread.run_sync(lambda: run_cli(url, "--wait", "30", stdin="hi\n"))
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("connection lost: "), result.stderr
    assert last.endswith("(status DISCONNECTED)"), result.stderr
    assert result.returncode == 1


async def test_connection_lost_mid_input_exits_1(raw_server: Callable[..., Any]) -> None:
    async def drop_after_first_message(peer: RawPeer) -> None:
        await peer.accept()
        await peer.read_frame()
        await peer.stream.aclose()

    url = await raw_server(drop_after_first_message)
    result = await trio.to_thread.run_sync(lambda: run_cli(url, stdin="line\n" * 50_000))
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("connection lost: "), result.stderr
    assert result.returncode == 1


async def test_messages_before_a_server_close_are_printed(
    raw_server: Callable[..., Any],
) -> None:
    async def greet_and_close(peer: RawPeer) -> None:
        await peer.accept(after=frame(1, b"first") + frame(1, b"second"))
        await peer.send(frame(8, close_payload(1000, b"bye")))
        await peer.read_close()
        await peer.stream.aclose()

    url = await raw_server(greet_and_close)

    status, out, err = await trio.to_thread.run_sync(lambda: wait_with_input_open(start_cli(url)))
    assert out.splitlines() == ["first", "second"]
    assert err.splitlines()[-1] == "closed by server: 1000 (normal closure): bye"
    assert status == 0


async def test_sigint_through_a_pipe_exits_130(raw_server: Callable[..., Any]) -> None:
    async def silent(peer: RawPeer) -> None:
        await peer.accept()
        await peer.read_close()
        await peer.send(frame(8, close_payload(1001)))
        await peer.stream.aclose()

    url = await raw_server(silent)

    def talk() -> tuple[int, str]:
        process = start_cli(url)
        assert process.stderr is not None
        first = process.stderr.readline()  # "connected to …": the CLI is up
        assert first.startswith("connected to "), first
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=TIMEOUT)
        return process.returncode, first + err

    status, err = await trio.to_thread.run_sync(talk)
    assert "Traceback" not in err
    assert err.splitlines()[-2:] == ["interrupted", "closed: 1001 (going away)"]
    assert status == 130


# --- through a pseudo-terminal ------------------------------------------------------------


def test_terminal_marks_incoming_lines_and_ctrl_d_closes() -> None:
    with Terminal() as terminal:
        terminal.expect("type messages, Ctrl-D to close")
        terminal.type(b"hello\n")
        terminal.expect("< hello\n")
        terminal.type(b"\x04")
        assert terminal.wait() == 0
    assert terminal.screen.endswith("closed: 1000 (normal closure)\n"), terminal.screen
    assert "Traceback" not in terminal.screen


def test_ctrl_c_on_a_terminal_exits_130_without_traceback() -> None:
    with Terminal() as terminal:
        terminal.expect("Ctrl-D to close")
        terminal.type(b"\x03")
        assert terminal.wait() == 130
    assert "Traceback" not in terminal.screen
    assert terminal.screen.endswith("interrupted\nclosed: 1001 (going away)\n"), terminal.screen


async def test_second_ctrl_c_stops_waiting_for_the_close(raw_server: Callable[..., Any]) -> None:
    async def never_answers_the_close(peer: RawPeer) -> None:
        await peer.accept()
        await peer.read_close()
        await trio.sleep_forever()

    url = await raw_server(never_answers_the_close)

    def talk() -> Terminal:
        with Terminal(url) as terminal:
            terminal.expect("Ctrl-D to close")
            terminal.type(b"\x03")
            terminal.expect("interrupted\n")
            terminal.type(b"\x03")
            assert terminal.wait() == 130
        return terminal

    terminal = await trio.to_thread.run_sync(talk)
    assert "Traceback" not in terminal.screen
    assert terminal.screen.endswith("interrupted again: not waiting for the close\n")


async def test_terminal_exits_when_the_server_closes_while_waiting_for_input(
    raw_server: Callable[..., Any],
) -> None:
    url = await raw_server(close_with_1008_after_first_message)

    def talk() -> Terminal:
        with Terminal(url) as terminal:
            terminal.expect("Ctrl-D to close")
            terminal.type(b"hello\n")
            assert terminal.wait() == 1
        return terminal

    terminal = await trio.to_thread.run_sync(talk)
    assert "Traceback" not in terminal.screen
    assert terminal.screen.endswith("closed by server: 1008 (policy violation): no thanks\n")


async def test_terminal_shows_control_characters_escaped(raw_server: Callable[..., Any]) -> None:
    hostile = b"\x1b]0;owned\x07\x1b[2Jhi"  # would retitle and clear the user's terminal

    async def send_escapes(peer: RawPeer) -> None:
        await peer.accept(after=frame(1, hostile))
        await peer.read_close()
        await peer.send(frame(8, close_payload(1000)))
        await peer.stream.aclose()

    url = await raw_server(send_escapes)

    def talk() -> Terminal:
        with Terminal(url) as terminal:
            terminal.expect("< ")
            terminal.type(b"\x04")
            assert terminal.wait() == 0
        return terminal

    terminal = await trio.to_thread.run_sync(talk)
    assert "\x1b" not in terminal.screen
    assert "< \\x1b]0;owned\\x07\\x1b[2Jhi\n" in terminal.screen


async def test_terminal_exits_when_the_connection_drops_while_waiting_for_input(
    raw_server: Callable[..., Any],
) -> None:
    async def drop_after_first_message(peer: RawPeer) -> None:
        await peer.accept()
        await peer.read_frame()
        await peer.stream.aclose()  # no close frame

    url = await raw_server(drop_after_first_message)

    def talk() -> Terminal:
        with Terminal(url) as terminal:
            terminal.expect("Ctrl-D to close")
            terminal.type(b"hello\n")
            assert terminal.wait() == 1
        return terminal

    terminal = await trio.to_thread.run_sync(talk)
    assert "Traceback" not in terminal.screen
    last = terminal.screen.splitlines()[-1]
    assert last.startswith("connection lost: ") and last.endswith("(status DISCONNECTED)"), last
