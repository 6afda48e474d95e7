"""Agent test scenarios on the real stack: the console saves a scenario file, refuses a broken
one under the field, runs them and shows pass or fail per scenario with the failed check; and
``stimm test-agent`` does the same against the control plane from the command line. The
scripted LLM answers the hours only to an agent instructed to give them."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from stimm.stack import LocalStack
from testkit.fakes.openai_server import FakeOpenAIServer
from tests.e2e.console import shot, sign_in

pytestmark = pytest.mark.e2e

expect.set_options(timeout=60_000)  # a run starts a Python process with livekit-agents

SUITE = """scenarios:
  - name: Opening hours
    turns:
      - user: When are you open?
        expect:
          - says: Sunday
"""


@pytest.fixture
async def llm_url() -> AsyncIterator[str]:
    rules = [("open", "The museum is open every Sunday afternoon.", "opening hours")]
    async with FakeOpenAIServer(rules, "Hello!") as server:
        yield server.base_url


async def test_the_console_and_the_cli_run_an_agents_scenarios(
    page: Page, stack: LocalStack, llm_url: str, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.control_plane_url, headers=headers) as api:
        created = await api.post(
            "/api/agents",
            json={
                "name": "Scenario-tested guide",
                "instructions": "You give the museum's opening hours.",
                "llm": {"provider": "openai", "model": "s", "options": {"base_url": llm_url}},
            },
        )
        assert created.status_code == 201, created.text
        agent_id = created.json()["id"]

        await sign_in(page, stack.api_key)
        await expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
        await page.goto(f"/agents/{agent_id}")
        panel = page.get_by_role("region", name="Test scenarios")
        yaml_box = panel.get_by_label("Scenarios (YAML)")

        await yaml_box.fill("scenarios:\n  - name: [")
        await panel.get_by_role("button", name="Save scenarios").click()
        await expect(panel.get_by_role("alert")).to_contain_text("not valid YAML: line 2")

        await yaml_box.fill(SUITE)
        await panel.get_by_role("button", name="Save scenarios").click()
        await panel.get_by_role("button", name="Run scenarios").click()
        result = panel.get_by_role("listitem", name="Opening hours")
        await expect(result).to_contain_text("Passed")
        await expect(panel.get_by_test_id("scenario-results")).to_contain_text("1 of 1 passed")
        await shot(page, "scenarios-passed")

        broken = await api.patch(
            f"/api/agents/{agent_id}", json={"instructions": "You talk about paintings."}
        )
        assert broken.status_code == 200
        await panel.get_by_role("button", name="Run scenarios").click()
        await expect(result).to_contain_text("Failed")
        await expect(result).to_contain_text('Turn 1: says "Sunday"')
        await expect(result).to_contain_text('the agent said "Hello!"')
        await shot(page, "scenarios-failed")

    # the command line, by the agent's name, against the same control plane
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(SUITE)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stimm",
        "test-agent",
        "Scenario-tested guide",
        str(scenarios),
        "--url",
        stack.control_plane_url,
        "--api-key",
        stack.api_key,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, _ = await asyncio.wait_for(child.communicate(), timeout=120)
    output = out.decode()
    assert child.returncode == 1, output
    assert "FAIL Opening hours" in output
    assert 'turn 1: says "Sunday"' in output
