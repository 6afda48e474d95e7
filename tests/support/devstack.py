"""``stimm dev`` as a user runs it, in a child process; what it prints is what the tests use."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from stimm.stack.binaries import REPO_ROOT

READY_LINE = "Press Ctrl-C to stop."
START_TIMEOUT_S = 300.0

_PRINTED = {
    "console": re.compile(r"^\s*Console:\s+(\S+?)/?\s*$"),
    "api_key": re.compile(r"^\s*API key:\s+(\S+)"),
    "agent": re.compile(r"^\s*Default agent: (.+) \(([0-9a-f-]{36})\)"),
    "llm": re.compile(r"^\s*LLM:\s+(\S+)"),
    "phone": re.compile(r"^\s*Phone:\s+(\+\d+) rings (.+)$"),
    "softphone": re.compile(r"^\s*softphone:\s+(sip:\S+)"),
    "sipp": re.compile(r"^\s*sipp:\s+(sipp .+)$"),
}


@dataclass
class Printed:
    """What ``stimm dev`` printed once it was up."""

    lines: list[str]
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for line in self.lines:
            for key, pattern in _PRINTED.items():
                if (m := pattern.match(line)) and key not in self.values:
                    self.values[key] = m.groups()

    def get(self, key: str, index: int = 0) -> str:
        assert key in self.values, f"stimm dev did not print {key!r}:\n" + "\n".join(self.lines)
        return self.values[key][index]


class DevStack:
    """Runs ``stimm dev --data-dir <dir> [args]`` until ``stop``."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen[str] | None = None
        self.printed = Printed([])
        self.output: list[str] = []

    @property
    def control_plane_url(self) -> str:
        return self.printed.get("console")

    @property
    def api_key(self) -> str:
        return self.printed.get("api_key")

    @property
    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def start(self) -> None:
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **self.extra_env}
        self.output = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stimm", "dev", "--data-dir", str(self.data_dir), *self.args],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if line.strip() == READY_LINE:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("stimm dev not up in time:\n" + "\n".join(self.output))
        else:
            self.proc.wait()
            raise AssertionError(
                f"stimm dev exited ({self.proc.returncode}):\n" + "\n".join(self.output)
            )
        self.printed = Printed(self.output)

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; everything it started must be gone afterwards."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def service_pid(self, name: str) -> int:
        """The pid of one of this stack's services by what its command line holds, e.g.
        ``"stimm llm"``. Only this stack's own processes count: another stack started by
        an earlier test may still run the same programs."""
        assert self.proc is not None, "the stack is not running"
        for pid in self._descendants(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if name in cmdline:
                return pid
        raise AssertionError(f"no process running {name!r}")

    @staticmethod
    def _descendants(root: int) -> list[int]:
        found: list[int] = []
        todo = [root]
        while todo:
            pid = todo.pop(0)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    children = (task / "children").read_text().split()
                except OSError:
                    continue
                for child in map(int, children):
                    found.append(child)
                    todo.append(child)
        return found
