"""Child processes of the local stack: start in their own process group, wait, stop."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

logger = logging.getLogger("stimm.stack")


class StackError(RuntimeError):
    """A local-stack service could not be started."""


PORT_FLOOR = 20000
"""Ports picked for the stack's services start here and stay below the kernel's ephemeral
range."""
_picked: set[tuple[int, int]] = set()


def ephemeral_floor() -> int:
    """The first port of the kernel's ephemeral range (Linux's default when unreadable)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free(kind: socket.SocketKind) -> int:
    """A port on loopback nothing is bound to right now, below the ephemeral range.

    The port is bound later by a child process. A port from the ephemeral range (what binding
    port 0 gives) can be taken in between by any outgoing connection or client UDP socket —
    a WebRTC peer binds dozens — and the service then fails on "address already in use".
    Ports below that range are only ever taken on purpose. A port is never handed out twice
    by one process.
    """
    floor = ephemeral_floor()
    candidates = range(PORT_FLOOR, floor) if floor - PORT_FLOOR >= 1000 else None
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", random.choice(candidates) if candidates else 0))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        if (kind, port) not in _picked:
            _picked.add((kind, port))
            return port
    raise StackError(f"no free {kind.name} port on loopback between {PORT_FLOOR} and {floor}")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    return _free(socket.SOCK_STREAM)


def free_udp_port() -> int:
    """A UDP port on loopback that nothing is bound to right now."""
    return _free(socket.SOCK_DGRAM)


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class PortInUse(StackError):
    """A port the stack was told to use is taken; ``setting`` names the option that chose it."""

    def __init__(self, setting: str, port: int, protocol: str) -> None:
        super().__init__(f"{setting} {port}/{protocol} is already in use")
        self.setting = setting
        self.port = port
        self.protocol = protocol


def port_free(port: int, protocol: str = "tcp", host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be bound on ``host`` right now."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if protocol == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def require_free(setting: str, port: int, protocol: str = "tcp", host: str = "127.0.0.1") -> None:
    """Raise ``PortInUse`` naming ``setting`` when ``port`` is taken."""
    if not port_free(port, protocol, host):
        raise PortInUse(setting, port, protocol)


class ManagedProcess:
    """A service started as a child in its own session, logging to a file.

    ``restart`` marks a service the stack brings back when it dies (``LocalStack`` supervises
    it); ``ready`` is the check that says it serves, used after each (re)start.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 15.0,
        restart: bool = False,
    ) -> None:
        self.name = name
        self.restart = restart
        self.restarts = 0
        self.stop_timeout = stop_timeout
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._ready: tuple[Callable[[], bool], float] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        logger.info("starting %s: %s", self.name, " ".join(self.argv))
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(
        self,
        check: Callable[[], bool],
        timeout: float,
        *,
        abort: threading.Event | None = None,
    ) -> None:
        """Poll ``check`` until it passes; fail fast if the process dies or ``abort`` is set.

        The check is kept for ``restart_now``.
        """
        self._ready = (check, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (abort and abort.is_set()):
            if not self.alive():
                raise StackError(
                    f"{self.name} exited early (code {self.proc.returncode if self.proc else '?'})"
                    f"; last log lines:\n{self.log_tail()}"
                )
            if check():
                return
            time.sleep(0.2)
        if abort is not None and abort.is_set():
            return
        raise StackError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def restart_now(self, abort: threading.Event | None = None) -> None:
        """Start the (dead) service again and wait until it serves as it did the first time."""
        self.stop(timeout=0)
        self.restarts += 1
        self.start()
        if self._ready is not None:
            check, timeout = self._ready
            self.wait_ready(check, timeout, abort=abort)

    def signal(self, sig: int) -> None:
        if self.alive() and self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the whole process group, then SIGKILL what is left after ``timeout``."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc is None:
            return None
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
        # children left in the group (job processes, forks) go too
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        return self.proc.returncode
