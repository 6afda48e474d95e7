"""Calls through faults injected with toxiproxy, shared by tests/e2e/test_faults.py and
bench/faults.py.

A call: the caller hears the greeting, asks a question while the fault lasts, asks another
once it is over, and hangs up. The session record must then hold its five turns exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from stimm.stack import LocalStack
from stimm.stack.toxiproxy import Toxiproxy
from testkit.audio import synthesize, transcribe
from testkit.caller import Caller

GREETING = "Hello, this is the Stimm test agent. How can I help you?"
QUESTIONS = ("When is the museum open?", "Is the museum open on Sunday?")
ANSWER = "sunday afternoon"
EXPECTED_ROLES = ["assistant", "user", "assistant", "user", "assistant"]
"""Greeting, question and answer (or apology) during the fault, question and answer after."""
POSTGRES_DOWN_S = 10.0
LLM_LATENCY_MS = 8_000
"""Beyond the worker's 5 s LLM attempt timeout: the reply times out and is apologised for."""

Fault = Callable[[LocalStack], AbstractAsyncContextManager[None]]


def proxies(stack: LocalStack) -> Toxiproxy:
    assert stack.toxiproxy is not None, "the stack runs without toxiproxy"
    return stack.toxiproxy


@asynccontextmanager
async def control_plane_restarted(stack: LocalStack) -> AsyncIterator[None]:
    """The control plane process is stopped during the question and started again after."""
    process = stack.process("control-plane")
    await asyncio.to_thread(process.stop)
    try:
        yield
    finally:
        await asyncio.to_thread(process.restart_now)


@asynccontextmanager
async def postgres_unreachable(stack: LocalStack) -> AsyncIterator[None]:
    """The control plane cannot reach PostgreSQL for 10 s (connections cut, new ones refused)."""
    started = time.monotonic()
    proxies(stack).set_enabled("postgres", False)
    try:
        yield
        await asyncio.sleep(max(0.0, POSTGRES_DOWN_S - (time.monotonic() - started)))
    finally:
        proxies(stack).set_enabled("postgres", True)


@asynccontextmanager
async def redis_restarted(stack: LocalStack) -> AsyncIterator[None]:
    """The control plane's and the workers' Redis goes away (every connection cut, as when it
    restarts) and comes back; requests that do not need it keep working meanwhile."""
    proxies(stack).set_enabled("redis", False)
    try:
        async with httpx.AsyncClient(
            base_url=stack.control_plane_url, headers=stack.api_headers, timeout=10
        ) as http:
            agents = await http.get("/api/agents")
            assert agents.status_code == 200, agents.text
        yield
    finally:
        proxies(stack).set_enabled("redis", True)


@asynccontextmanager
async def llm_slow(stack: LocalStack) -> AsyncIterator[None]:
    """Every chunk from the LLM arrives 8 s late."""
    with proxies(stack).slow("llm", LLM_LATENCY_MS):
        yield


FAULTS: dict[str, Fault] = {
    "control_plane_restarted": control_plane_restarted,
    "postgres_unreachable_10s": postgres_unreachable,
    "redis_restarted": redis_restarted,
    "llm_slow": llm_slow,
}


@dataclass
class Outcome:
    """What one call through one fault came to."""

    fault: str
    call_survived: bool = False
    """The question after the fault was answered."""
    heard_during_fault: str = ""
    turns_expected: int = len(EXPECTED_ROLES)
    turns_recorded: int = 0
    turns_lost: int = 0
    turns_duplicated: int = 0
    recovery_s: float | None = None
    """Fault end → every turn spoken so far visible through the API."""
    roles: list[str] = field(default_factory=list)
    status: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def agent_body(llm_url: str) -> dict[str, Any]:
    return {
        "name": "Museum guide (faults)",
        "instructions": "You answer questions about the museum in one short sentence.",
        "greeting": GREETING,
        "stt": {"provider": "local"},
        "llm": {"provider": "openai", "model": "scripted", "options": {"base_url": llm_url}},
        "tts": {"provider": "local"},
    }


async def _record(http: httpx.AsyncClient, session_id: str) -> dict[str, Any] | None:
    try:
        resp = await http.get(f"/api/sessions/{session_id}")
    except httpx.HTTPError:
        return None
    return resp.json() if resp.status_code == 200 else None


async def _wait_for_turns(
    http: httpx.AsyncClient, session_id: str, count: int, timeout: float, ended: bool = False
) -> dict[str, Any] | None:
    """The record once it holds ``count`` turns (and, with ``ended``, its outcome)."""
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = await _record(http, session_id) or record
        if (
            record is not None
            and len(record["turns"]) >= count
            and (not ended or record["status"] in ("completed", "failed"))
        ):
            return record
        await asyncio.sleep(0.2)
    return record


async def _ask(caller: Caller, question: str) -> str:
    caller.skip_heard()
    await caller.say(synthesize(question))
    return transcribe((await caller.next_utterance(timeout=90)).pcm)


async def call_through(stack: LocalStack, agent_id: str, name: str) -> Outcome:
    """One call with fault ``name`` during its first question."""
    outcome = Outcome(fault=name)
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        created = await http.post("/api/sessions", json={"agent_id": agent_id})
        assert created.status_code == 201, created.text
        sess = created.json()
        caller = Caller()
        await caller.join(sess["livekit_url"], sess["token"])
        try:
            await caller.next_utterance(timeout=90)  # the greeting
            async with FAULTS[name](stack):
                outcome.heard_during_fault = await _ask(caller, QUESTIONS[0])
            fault_end = time.monotonic()
            # everything said so far reaches the record once the control plane can take it
            so_far = await _wait_for_turns(http, sess["session_id"], 3, timeout=60)
            if so_far is not None and len(so_far["turns"]) >= 3:
                outcome.recovery_s = round(time.monotonic() - fault_end, 2)
            outcome.call_survived = ANSWER in await _ask(caller, QUESTIONS[1])
        finally:
            await caller.leave()
        record = await _wait_for_turns(
            http, sess["session_id"], len(EXPECTED_ROLES), timeout=60, ended=True
        )
    turns = record["turns"] if record else []
    outcome.status = record["status"] if record else "unknown"
    outcome.roles = [t["role"] for t in turns]
    outcome.turns_recorded = len(turns)
    got, want = Counter(outcome.roles), Counter(EXPECTED_ROLES)
    outcome.turns_lost = sum((want - got).values())
    outcome.turns_duplicated = sum((got - want).values())
    return outcome
