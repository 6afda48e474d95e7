"""The local stack on embedded defaults (SQLite) starts, serves, and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from stimm.stack import LocalStack, StackOptions
from stimm.stack.process import tcp_open

pytestmark = pytest.mark.e2e


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


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
        assert not [g for g in pgids if g and group_alive(g)]
        assert not [p for p in ports if tcp_open(p)]
