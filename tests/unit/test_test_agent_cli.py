"""``stimm test-agent --config agent.json SCENARIOS``: Rich output per scenario and the exit
code, against a scripted LLM in its own process that answers according to the instructions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stimm.cli import app

pytestmark = pytest.mark.unit

SUITE = """scenarios:
  - name: Opening hours
    turns:
      - user: When are you open?
        expect:
          - says: Sunday
"""


@pytest.fixture(scope="module")
def llm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from testkit.fakes.openai_server import serve_in_process

    rules = [{"match": "open", "reply": "Open on Sunday.", "instructions": "opening hours"}]
    with serve_in_process(tmp_path_factory.mktemp("llm"), rules=rules, reply="Hello!") as url:
        yield url


def run(tmp_path: Path, llm_url: str, instructions: str) -> tuple[int, str]:
    agent = tmp_path / "agent.json"
    agent.write_text(
        json.dumps(
            {
                "id": "ignored",  # as GET /api/agents/{id} returns it
                "name": "Museum guide",
                "instructions": instructions,
                "llm": {"provider": "openai", "model": "s", "options": {"base_url": llm_url}},
            }
        )
    )
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(SUITE)
    result = CliRunner().invoke(
        app, ["test-agent", "--config", str(agent), str(scenarios)], terminal_width=200
    )
    return result.exit_code, result.output


def test_a_passing_suite_exits_0(tmp_path: Path, llm_url: str) -> None:
    code, output = run(tmp_path, llm_url, "You give the opening hours.")
    assert code == 0, output
    assert "PASS Opening hours" in output
    assert "1 of 1 scenarios passed" in output


def test_a_failing_suite_names_the_scenario_and_check_and_exits_1(
    tmp_path: Path, llm_url: str
) -> None:
    code, output = run(tmp_path, llm_url, "You talk about paintings.")
    assert code == 1, output
    assert "FAIL Opening hours" in output
    assert 'turn 1: says "Sunday"' in output
    assert 'the agent said "Hello!"' in output


def test_a_bad_scenario_file_exits_2_saying_why(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text("scenarios: []\n")
    result = CliRunner().invoke(
        app, ["test-agent", "--config", str(tmp_path / "agent.json"), str(scenarios)]
    )
    assert result.exit_code == 2
    assert "not a valid scenario file" in result.output
