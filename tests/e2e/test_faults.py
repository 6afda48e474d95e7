"""Faults during a call, injected with a real toxiproxy between the worker and the control plane,
the control plane and PostgreSQL / Redis, and the worker and the LLM: the call goes on, and the
session record holds every turn exactly once after recovery."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from stimm.stack import LocalStack, StackOptions
from stimm.stack.postgres import drop_database, ensure_database
from testkit.faults import ANSWER, EXPECTED_ROLES, FAULTS, agent_body, call_through

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fault_stack(run_dir: Path) -> Iterator[LocalStack]:
    """The platform with its internal links through toxiproxy, on a fresh database."""
    db_name = f"stimm_e2e_faults_{os.getpid()}"
    s = LocalStack(
        StackOptions(
            run_dir=run_dir / "fault-stack",
            database_url=ensure_database(db_name, fresh=True),
            workers=1,
            toxiproxy=True,
        )
    )
    s.start()
    yield s
    s.stop()
    drop_database(db_name)


@pytest.fixture(scope="module")
def agent_id(fault_stack: LocalStack, fake_llm_url: str) -> str:
    """An agent whose LLM (the scripted one) is reached through the ``llm`` proxy."""
    assert fault_stack.toxiproxy is not None
    port = fault_stack.toxiproxy.create("llm", urlsplit(fake_llm_url).port or 80)
    resp = httpx.post(
        f"{fault_stack.control_plane_url}/api/agents",
        json=agent_body(f"http://127.0.0.1:{port}/v1"),
        headers=fault_stack.api_headers,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_call_survives_and_no_turn_is_lost(
    fault_stack: LocalStack, agent_id: str, fault: str
) -> None:
    outcome = await call_through(fault_stack, agent_id, fault)

    if fault == "llm_slow":  # the reply timed out: apologised for, the call goes on
        assert "sorry" in outcome.heard_during_fault or "trouble" in outcome.heard_during_fault
        assert ANSWER not in outcome.heard_during_fault
    else:  # nothing the call needs is down: answered as usual
        assert ANSWER in outcome.heard_during_fault, outcome
    assert outcome.call_survived, outcome
    assert outcome.roles == EXPECTED_ROLES, outcome
    assert outcome.turns_lost == 0 and outcome.turns_duplicated == 0, outcome
    assert outcome.recovery_s is not None, outcome


async def test_worker_registry_needs_redis_and_says_so(fault_stack: LocalStack) -> None:
    assert fault_stack.toxiproxy is not None
    with fault_stack.toxiproxy.down("redis"):
        async with httpx.AsyncClient(
            base_url=fault_stack.control_plane_url, headers=fault_stack.api_headers, timeout=10
        ) as http:
            workers = await http.get("/api/workers")
            agents = await http.get("/api/agents")
    assert workers.status_code == 503, workers.text
    assert agents.status_code == 200, agents.text
