"""Start and stop the interop suite's peers: real servers and proxies nobody here wrote.

Each ``start_*`` function writes a config into a directory of its own, starts the program
as a subprocess listening on 127.0.0.1 only (an ephemeral port chosen here), waits until
the port accepts connections and returns a :class:`Peer`; :meth:`Peer.stop` ends it.
The programs come from the package registries (``.ci/run`` installs them): Node's ``ws``
(npm, into ``interop/node_modules``), nginx, tinyproxy and dante (Debian), pproxy (PyPI).
A program that is missing raises :class:`PeerUnavailable` naming the install step: the
suite fails rather than skipping.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
"""The ``interop/`` directory (the Node script and its ``node_modules`` live here)."""
START_TIMEOUT = 30.0
"""Seconds a peer gets to listen on its port (generous: the machine may be loaded)."""
STOP_TIMEOUT = 10.0
"""Seconds a peer gets to exit after SIGTERM before it is killed."""
USER = "user"
"""The user name every password-protected peer accepts."""
PASSWORD = "s3cret-pass"
"""The password every password-protected peer accepts."""
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
"""Where Debian puts daemons (nginx, danted), often not on a non-root ``PATH``."""


class PeerUnavailable(RuntimeError):
    """A peer program is not installed or did not start; the message says what to do."""


@dataclass
class Peer:
    """A running peer: its process, its port on 127.0.0.1 and its log file."""

    name: str
    """Human-readable name, e.g. ``"nginx"``."""
    process: subprocess.Popen[bytes]
    """The peer's main process (started by us; stopped by :meth:`stop`)."""
    port: int
    """The TCP port it listens on, on 127.0.0.1."""
    log: Path
    """Its log file (printed when it fails to start)."""

    def stop(self) -> None:
        """SIGTERM the process, wait up to :data:`STOP_TIMEOUT` s, then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS's next ephemeral port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    return free_port()


def find_program(name: str, install_hint: str) -> str:
    """The path of ``name`` on ``PATH`` or in the sbin directories, or PeerUnavailable."""
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
    found = shutil.which(name, path=path)
    if found is None:
        raise PeerUnavailable(f"{name} is not installed: {install_hint} (.ci/run does this)")
    return found


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _wait_for_port(name: str, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PeerUnavailable(
                f"{name} exited with status {process.returncode} at start; log {log}:\n"
                + _tail(log)
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.05)
    raise PeerUnavailable(f"{name} did not listen on 127.0.0.1:{port} in {START_TIMEOUT} s")


def _start(name: str, argv: Sequence[str], port: int, log: Path, *, cwd: Path) -> Peer:
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    peer = Peer(name, process, port, log)
    try:
        _wait_for_port(name, process, port, log)
    except BaseException:
        peer.stop()
        raise
    return peer


def start_ws_server(workdir: Path) -> Peer:
    """Node's ``ws`` server (``interop/ws_server.js``), permessage-deflate on."""
    node = find_program("node", "apt-get install nodejs")
    if not (HERE / "node_modules" / "ws" / "package.json").is_file():
        raise PeerUnavailable(
            f"the npm package ws is not installed in {HERE}: run `npm install` there"
            " (.ci/run does this)"
        )
    log = workdir / "ws_server.log"
    with log.open("ab") as log_file:
        # stdin is a pipe that we keep open: the server exits when it closes (see the script).
        process = subprocess.Popen(
            [node, str(HERE / "ws_server.js")],
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline().decode(errors="replace") if ready else ""
    peer = Peer("ws (Node)", process, 0, log)
    if not line.startswith("listening "):
        peer.stop()
        raise PeerUnavailable(f"the Node ws server did not start ({line!r}); log:\n{_tail(log)}")
    peer.port = int(line.split()[1])
    return peer


def start_nginx(
    workdir: Path, *, backend_port: int, cert_pem: Path, expired_pem: Path
) -> tuple[Peer, int]:
    """nginx as a TLS-terminating reverse proxy in front of ``backend_port``.

    ``cert_pem`` and ``expired_pem`` each hold a private key and its certificate chain.
    Locations: ``/`` proxies WebSocket upgrades to the backend; ``/private/`` also demands
    Basic auth (:data:`USER` / :data:`PASSWORD`); ``/moved`` (301), ``/found`` (302),
    ``/temporary`` (307), ``/permanent`` (308) redirect to ``/echo``; ``/to-ws`` redirects
    to ``ws://`` (a downgrade); ``/loop`` redirects to itself; ``/forbidden`` is 403;
    ``/down/`` proxies to a closed port (502). A second server block, with the expired
    certificate, proxies ``/``: its port is returned with the peer.
    """
    nginx = find_program("nginx", "apt-get install nginx")
    port, expired_port, down_port = free_port(), free_port(), closed_port()
    (workdir / "htpasswd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    # As root, nginx's workers switch to an unprivileged user that cannot read our private
    # temporary directory: keep them as root there (never done outside a test).
    user = "user root;" if os.geteuid() == 0 else ""
    proxy = f"""
            proxy_pass http://127.0.0.1:{backend_port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;"""
    config = f"""
{user}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.log info;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert_pem};
        ssl_certificate_key {cert_pem};
        location / {{ {proxy} }}
        location /private/ {{
            auth_basic "interop";
            auth_basic_user_file {workdir}/htpasswd;
            {proxy}
        }}
        location = /moved {{ return 301 /echo; }}
        location = /found {{ return 302 /echo; }}
        location = /temporary {{ return 307 /echo; }}
        location = /permanent {{ return 308 /echo; }}
        location = /to-ws {{ return 302 ws://127.0.0.1:{backend_port}/echo; }}
        location = /loop {{ return 302 /loop; }}
        location = /forbidden {{ return 403; }}
        location /down/ {{ proxy_pass http://127.0.0.1:{down_port}; }}
    }}
    server {{
        listen 127.0.0.1:{expired_port} ssl;
        server_name localhost;
        ssl_certificate {expired_pem};
        ssl_certificate_key {expired_pem};
        location / {{ {proxy} }}
    }}
}}
"""
    conf = workdir / "nginx.conf"
    conf.write_text(config)
    log = workdir / "nginx.log"
    argv = [nginx, "-p", str(workdir), "-e", str(log), "-c", str(conf), "-g", "daemon off;"]
    peer = _start("nginx", argv, port, log, cwd=workdir)
    try:
        _wait_for_port("nginx", peer.process, expired_port, log)
    except BaseException:
        peer.stop()
        raise
    return peer, expired_port


def start_tinyproxy(workdir: Path, *, allowed_ports: Sequence[int]) -> Peer:
    """tinyproxy: HTTP CONNECT with Basic auth, only to ``allowed_ports`` (else 403)."""
    tinyproxy = find_program("tinyproxy", "apt-get install tinyproxy")
    port = free_port()
    log = workdir / "tinyproxy.log"
    connect_ports = "\n".join(f"ConnectPort {p}" for p in allowed_ports)
    # As root tinyproxy insists on switching user; to the same root it changes nothing.
    user = "User root\nGroup root\n" if os.geteuid() == 0 else ""
    (workdir / "tinyproxy.conf").write_text(
        f"""{user}Port {port}
Listen 127.0.0.1
Timeout 300
LogFile "{log}"
LogLevel Info
PidFile "{workdir}/tinyproxy.pid"
MaxClients 64
Allow 127.0.0.1
BasicAuth {USER} {PASSWORD}
DisableViaHeader Yes
{connect_ports}
"""
    )
    argv = [tinyproxy, "-d", "-c", str(workdir / "tinyproxy.conf")]
    return _start("tinyproxy", argv, port, log, cwd=workdir)


def start_dante(workdir: Path, *, blocked_port: int) -> Peer:
    """dante (``danted``): SOCKS5 without authentication, to loopback only.

    Connections to ``blocked_port`` are refused by a rule (SOCKS reply 2, "not allowed").
    """
    danted = find_program("danted", "apt-get install dante-server")
    port = free_port()
    log = workdir / "danted.log"
    user = "user.privileged: root\nuser.unprivileged: root\n" if os.geteuid() == 0 else ""
    (workdir / "danted.conf").write_text(
        f"""logoutput: {log}
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
{user}
client pass {{ from: 127.0.0.1/32 to: 0.0.0.0/0 }}
socks block {{ from: 127.0.0.1/32 to: 127.0.0.0/8 port = {blocked_port} log: error }}
socks pass {{ from: 127.0.0.1/32 to: 127.0.0.0/8 log: error }}
socks pass {{ from: 127.0.0.1/32 to: localhost log: error }}
"""
    )
    argv = [danted, "-f", str(workdir / "danted.conf"), "-p", str(workdir / "danted.pid")]
    return _start("dante", argv, port, log, cwd=workdir)


def start_pproxy(workdir: Path) -> Peer:
    """pproxy (PyPI): SOCKS5 with username/password (:data:`USER` / :data:`PASSWORD`)."""
    if shutil.which("pproxy", path=str(Path(sys.executable).parent)) is None:
        raise PeerUnavailable("pproxy is not installed: pip install pproxy (.ci/run does this)")
    port = free_port()
    log = workdir / "pproxy.log"
    # pproxy's URL syntax: "#user:password" sets the credentials it demands. Its console
    # entry point (pproxy.server:main) installs uvloop when importable and then calls
    # asyncio.get_event_loop(), which uvloop (and Python >= 3.14) refuse outside a running
    # loop: run it on asyncio's own loop, set beforehand.
    launcher = (
        "import asyncio, sys; sys.modules['uvloop'] = None;"
        " asyncio.set_event_loop(asyncio.new_event_loop());"
        " from pproxy.server import main; main()"
    )
    listen = f"socks5://127.0.0.1:{port}#{USER}:{PASSWORD}"
    # --auth 0: by default pproxy lets an address that authenticated once in for 30 days
    # without credentials; every connection of the suite must authenticate on its own.
    argv = [sys.executable, "-c", launcher, "-l", listen, "--auth", "0"]
    return _start("pproxy", argv, port, log, cwd=workdir)
