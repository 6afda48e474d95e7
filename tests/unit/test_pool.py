"""The pool's bookkeeping that needs no server: heartbeat expiry and the Workers view."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from control_plane.workers.registry import MemoryRegistry, to_public
from stimm.schema import JobMetadata, WorkerHeartbeat
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


class FakeServer:
    """The three things ``PoolMember`` and its ``Admission`` read from the ``AgentServer``."""

    id = "AW_test"
    draining = False
    active_jobs: list[object] = []


async def test_a_burst_of_requests_cannot_take_more_than_the_session_slots() -> None:
    from livekit.agents import JobRequest
    from livekit.protocol import agent

    from worker.load import LoadOptions
    from worker.pool import PoolMember

    member = PoolMember(PoolOptions(load=LoadOptions(max_sessions=2, latency_slo_s=0)))
    member.admission.server = FakeServer()  # type: ignore[assignment]
    answers: list[str] = []
    assigned = asyncio.Event()  # LiveKit's assignment; never arrives during the burst

    def request(n: int) -> JobRequest:
        async def on_accept(_args: object) -> None:
            answers.append(f"accept {n}")
            await assigned.wait()

        async def on_reject(_terminate: bool) -> None:
            answers.append(f"reject {n}")

        meta = JobMetadata(agent_id="a", session_id=f"s{n}").model_dump_json()
        job = agent.Job(id=f"AJ_{n}", metadata=meta)
        return JobRequest(job=job, on_reject=on_reject, on_accept=on_accept)

    tasks = [asyncio.create_task(member.on_request(request(n))) for n in range(4)]
    await asyncio.sleep(0.05)
    assert sorted(answers) == ["accept 0", "accept 1", "reject 2", "reject 3"]
    assert member.sessions() == 2
    beat = member.heartbeat(member.load.read(member.sessions()))
    assert sorted(beat.sessions) == ["s0", "s1"]  # reported before the jobs run
    assigned.set()
    await asyncio.gather(*tasks)


def test_the_load_given_to_livekit_counts_running_jobs_only() -> None:
    """livekit-agents adds its own share for each job it has accepted but not launched yet
    (``reserved slots`` × load per running job); counting those jobs in the load as well
    made a worker with 2 of 4 slots running and 1 starting refuse a fourth caller."""
    from livekit.protocol import agent

    from worker.load import LoadOptions
    from worker.pool import PoolMember

    class Running:
        def __init__(self, n: int) -> None:
            self.job = agent.Job(id=f"AJ_run{n}", metadata="{}")

    server = FakeServer()
    server.active_jobs = [Running(0), Running(1)]
    member = PoolMember(PoolOptions(load=LoadOptions(max_sessions=4, latency_slo_s=0)))
    member.admission.server = server  # type: ignore[assignment]
    member.admission.accepted["AJ_new"] = ("s-new", time.monotonic())

    load = member.admission.load_fnc(server)  # type: ignore[arg-type]
    assert load == 0.5
    # livekit-agents' availability check: load + reserved × (load / running jobs)
    assert load + 1 * (load / len(server.active_jobs)) < member.options.load.threshold
    # the pool view and the worker's own slot check still count the starting job
    assert member.sessions() == 3
