"""An agent's test scenarios through the control plane (real PostgreSQL): saved as YAML and
refused with a 422 that says where a file is wrong; run in a child process (``python -m
worker.scenarios``) against the agent as saved, with the scripted LLM answering according to
the agent's instructions; the last run kept until the file changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from testkit.fakes.openai_server import FakeOpenAIServer
from tests.integration.control_plane_env import (
    DATABASE_URL,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration

HOURS = "The museum is open every Sunday afternoon."
SUITE = """# what a visitor asks
scenarios:
  - name: Opening hours
    turns:
      - user: When are you open?
        expect:
          - says: Sunday
  - name: Small talk
    turns:
      - user: Hello there
        expect:
          - not_says: Sunday
"""


@pytest_asyncio.fixture
async def app_and_client() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with (
        fresh_database(DATABASE_URL) as url,
        app_client(make_settings(url, scenario_timeout_s=120)) as pair,
    ):
        yield pair


@pytest_asyncio.fixture
async def llm_url() -> AsyncIterator[str]:
    # the hours only for an agent instructed to give them
    async with FakeOpenAIServer([("open", HOURS, "opening hours")], "Hello!") as server:
        yield server.base_url


async def create_agent(client: httpx.AsyncClient, llm_url: str) -> str:
    body: dict[str, Any] = {
        "name": "Museum guide",
        "instructions": "You give the museum's opening hours.",
        "llm": {"provider": "openai", "model": "scripted", "options": {"base_url": llm_url}},
    }
    response = await client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(
    ("text", "loc", "message"),
    [
        ("scenarios:\n  - name: [", ["body", "yaml"], "not valid YAML: line 2"),
        (
            "scenarios:\n  - name: a\n    turns:\n      - user: hi\n        expect:\n"
            "          - sayz: x\n",
            ["body", "yaml", "scenarios", 0, "turns", 0, "expect", 0],
            "a check has exactly one of says, not_says, calls, not_calls, judge (got sayz)",
        ),
    ],
)
async def test_a_bad_file_is_refused_with_where_it_is_wrong(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
    llm_url: str,
    text: str,
    loc: list[Any],
    message: str,
) -> None:
    _, client = app_and_client
    agent_id = await create_agent(client, llm_url)

    response = await client.put(f"/api/agents/{agent_id}/scenarios", json={"yaml": text})

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert message in error["msg"]
    # nothing was stored, and there is nothing to run
    assert (await client.get(f"/api/agents/{agent_id}/scenarios")).json()["yaml"] == ""
    run = await client.post(f"/api/agents/{agent_id}/scenarios/run")
    assert run.status_code == 409
    assert "no scenarios" in run.json()["detail"]


async def test_scenarios_pass_then_fail_naming_the_check_when_the_instructions_change(
    app_and_client: tuple[FastAPI, httpx.AsyncClient], llm_url: str
) -> None:
    _, client = app_and_client
    agent_id = await create_agent(client, llm_url)
    saved = await client.put(f"/api/agents/{agent_id}/scenarios", json={"yaml": SUITE})
    assert saved.status_code == 200, saved.text
    assert saved.json()["yaml"] == SUITE  # comments kept, as written

    run = await client.post(f"/api/agents/{agent_id}/scenarios/run")
    assert run.status_code == 200, run.text
    result = run.json()
    assert result["passed"] is True, result
    assert [(s["name"], s["passed"], len(s["checks"])) for s in result["scenarios"]] == [
        ("Opening hours", True, 1),
        ("Small talk", True, 1),
    ]
    assert (await client.get(f"/api/agents/{agent_id}/scenarios")).json()["last_run"] == result

    changed = await client.patch(
        f"/api/agents/{agent_id}", json={"instructions": "You talk about paintings."}
    )
    assert changed.status_code == 200
    run = await client.post(f"/api/agents/{agent_id}/scenarios/run")
    assert run.status_code == 200, run.text
    result = run.json()
    assert result["passed"] is False
    hours, small_talk = result["scenarios"]
    assert (hours["name"], hours["passed"]) == ("Opening hours", False)
    assert hours["checks"] == [
        {
            "turn": 1,
            "check": 'says "Sunday"',
            "passed": False,
            "detail": 'the agent said "Hello!"',
        }
    ]
    assert small_talk["passed"] is True

    # a changed file forgets the run of the old one
    await client.put(f"/api/agents/{agent_id}/scenarios", json={"yaml": SUITE + "\n# v2\n"})
    assert (await client.get(f"/api/agents/{agent_id}/scenarios")).json()["last_run"] is None


async def test_an_agent_whose_llm_cannot_be_built_gets_a_clear_409(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = app_and_client
    # a base URL the egress policy refuses (a link-local metadata address) is only checked
    # when the LLM is built, in the run
    agent_id = await create_agent(client, "http://169.254.169.254/v1")
    await client.put(f"/api/agents/{agent_id}/scenarios", json={"yaml": SUITE})

    run = await client.post(f"/api/agents/{agent_id}/scenarios/run")

    assert run.status_code == 409, run.text
    assert run.json()["detail"].startswith("The agent cannot be run: ")
