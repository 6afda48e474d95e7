"""py-spy sampling of a running process (and, optionally, its children) for the benchmarks:
collapsed stacks kept in the run folder (for a flame graph), and the functions that took the
samples, with their shares."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
"""py-spy, a dev dependency: on PATH, or beside this interpreter in the virtualenv."""


class Profile:
    """py-spy recording ``pid`` (with ``subprocesses``, its whole tree) into ``raw``, until
    ``stop``. ``idle`` also samples threads that are waiting; ``nonblocking`` reads the
    process without pausing it at each sample (a server under load keeps its throughput; a
    stack may now and then be torn)."""

    def __init__(
        self,
        pid: int,
        raw: Path,
        *,
        subprocesses: bool = False,
        idle: bool = True,
        nonblocking: bool = False,
    ) -> None:
        self.raw = raw
        self.proc = subprocess.Popen(
            [PY_SPY, "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
            + ["--output", str(self.raw)]
            + (["--subprocesses"] if subprocesses else [])
            + (["--idle"] if idle else [])
            + (["--nonblocking"] if nonblocking else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, within: str | None = None, top: int = 30) -> dict[str, Any]:
        """The functions on the sampled stacks (those under a frame naming ``within``, when
        given) with the share of those samples each appears in, most first; and each
        function's share as the innermost frame (where the CPU actually was)."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        stacks = [
            (line.rsplit(" ", 1)[0].split(";"), int(line.rsplit(" ", 1)[1]))
            for line in self.raw.read_text().splitlines()
            if line.strip()
        ]
        chosen = [(f, n) for f, n in stacks if within is None or any(within in x for x in f)]
        total = sum(n for _, n in chosen)
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        for frames, n in chosen:
            start = next(i for i, f in enumerate(frames) if within in f) if within else 0
            for f in dict.fromkeys(short(f) for f in frames[start:]):
                inclusive[f] += n
            own[short(frames[-1])] += n

        def shares(counts: Counter[str]) -> list[dict[str, Any]]:
            return [
                {"function": f, "share": round(n / total, 3)} for f, n in counts.most_common(top)
            ]

        return {
            "samples": total,
            "samples_total": sum(n for _, n in stacks),
            "top_inclusive": shares(inclusive) if total else [],
            "top_own": shares(own) if total else [],
        }


def short(frame: str) -> str:
    """``create_session (control_plane/api/routes/sessions.py:64)`` without the line number and
    with the path cut to the project or the package."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"
