"""The local stack on embedded defaults (SQLite) starts, serves, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from stimm.stack import LocalStack, StackOptions
from stimm.stack.process import tcp_open

pytestmark = pytest.mark.e2e


def live_members(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies are dead already: in a
    container without an init that reaps them they linger as entries, holding nothing)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def test_stack_starts_twice_in_a_row_and_leaves_no_stray_processes(tmp_path: Path) -> None:
    run_dir = tmp_path / "dev"
    for _ in range(2):  # same folder twice: idempotent start over existing state
        stack = LocalStack(StackOptions(run_dir=run_dir, workers=1))
        with stack:
            health = httpx.get(f"{stack.control_plane_url}/health", timeout=10)
            assert health.status_code == 200 and health.json()["database"] == "ok"
            assert (run_dir / "stimm.db").exists()  # SQLite is the embedded default
            pgids = [p.pid for p in stack.processes if p.pid]
            ports = [
                stack.options.livekit_port,
                stack.options.control_plane_port,
                stack.options.redis_port,
            ]
        assert not [m for g in pgids for m in live_members(g)]
        assert not [p for p in ports if tcp_open(p)]
