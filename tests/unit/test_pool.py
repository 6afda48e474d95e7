"""The pool's bookkeeping that needs no server: heartbeat expiry and the Workers view."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from control_plane.workers.registry import MemoryRegistry, to_public
from stimm.schema import WorkerHeartbeat
from worker.pool import PoolOptions

pytestmark = pytest.mark.unit


def beat(worker_id: str, **kw: object) -> WorkerHeartbeat:
    fields: dict[str, object] = {
        "load": 0.25,
        "threshold": 0.999,
        "max_sessions": 4,
        "active_jobs": 1,
        "sessions": [f"s-{worker_id}"],
    }
    fields.update(kw)
    return WorkerHeartbeat(worker_id=worker_id, **fields)  # type: ignore[arg-type]


async def test_a_worker_without_heartbeat_leaves_the_registry_after_the_ttl() -> None:
    registry = MemoryRegistry(ttl_s=0.3)
    await registry.put(beat("a"))
    await registry.put(beat("b"))
    assert {w.worker_id for w in await registry.live()} == {"a", "b"}
    assert await registry.worker_of("s-b") == "b"
    await asyncio.sleep(0.2)
    await registry.put(beat("a"))  # a keeps beating, b went silent
    await asyncio.sleep(0.2)
    assert [w.worker_id for w in await registry.live()] == ["a"]
    assert await registry.worker_of("s-b") is None
    await registry.remove("a")
    assert await registry.live() == []


def test_full_means_at_threshold_or_draining() -> None:
    assert not to_public(beat("a", load=0.5), seen_at=datetime.now(UTC)).full
    assert to_public(beat("a", load=1.0), seen_at=datetime.now(UTC)).full
    assert to_public(beat("a", load=0.0, draining=True), seen_at=datetime.now(UTC)).full


def test_pool_options_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STIMM_DRAIN_TIMEOUT", "120")
    monkeypatch.setenv("STIMM_WORKER_EXECUTOR", "thread")
    monkeypatch.setenv("STIMM_WORKER_STATUS_PORT", "0")
    opts = PoolOptions.from_env()
    assert (opts.drain_timeout_s, opts.executor, opts.status_port) == (120, "thread", 0)
    monkeypatch.setenv("STIMM_WORKER_EXECUTOR", "fork")
    with pytest.raises(ValueError, match="STIMM_WORKER_EXECUTOR"):
        PoolOptions.from_env()
