"""What ``stimm test-agent`` needs around the runner: the agent's config from a control plane
(or a local JSON file) and the results printed with Rich."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from stimm.scenarios import ScenarioSuite, SuiteResult
from stimm.schema import AgentConfig

_NOT_CONFIG = {"id", "is_default", "created_at", "updated_at", "secrets"}
"""Fields of ``GET /api/agents/{id}`` (and the worker's config) that are not the config."""


class AgentLookupError(Exception):
    """The agent cannot be found or read; the message says why."""


def fetch_agent_config(
    base_url: str, api_key: str, agent: str, *, transport: httpx.BaseTransport | None = None
) -> AgentConfig:
    """The config of the agent whose id or name is ``agent``, from the control plane's API.

    Raises:
        AgentLookupError: No such agent, several with that name, or the API refused.
    """
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport, timeout=30
        ) as client:
            response = client.get(f"/api/agents/{agent}")
            if response.status_code == 404:
                response = client.get("/api/agents", params={"limit": 500})
                _raise_for(response, base_url)
                named = [a for a in response.json()["items"] if a["name"] == agent]
                if not named:
                    raise AgentLookupError(f"No agent has the id or name {agent!r}")
                if len(named) > 1:
                    ids = ", ".join(a["id"] for a in named)
                    raise AgentLookupError(
                        f"Several agents are named {agent!r} ({ids}); give an id"
                    )
                return read_agent_config(named[0])
            _raise_for(response, base_url)
            return read_agent_config(response.json())
    except httpx.HTTPError as e:
        raise AgentLookupError(f"The control plane at {base_url} cannot be reached: {e}") from e


def _raise_for(response: httpx.Response, base_url: str) -> None:
    if response.status_code == 401:
        raise AgentLookupError(
            f"The control plane at {base_url} refused the API key (--api-key / STIMM_API_KEY)"
        )
    if response.is_error:
        detail = response.text[:300]
        raise AgentLookupError(f"The control plane answered {response.status_code}: {detail}")


def read_agent_config(data: Any) -> AgentConfig:
    """An agent as the API returns it (or its config alone) as an ``AgentConfig``; secret
    references become the values of environment variables of the same name.

    Raises:
        AgentLookupError: It is not an agent config.
    """
    if not isinstance(data, dict):
        raise AgentLookupError("An agent config is a JSON object")
    fields = {k: v for k, v in data.items() if k not in _NOT_CONFIG}
    try:
        return AgentConfig.model_validate(_with_env_secrets(fields))
    except ValidationError as e:
        raise AgentLookupError(f"Not a valid agent config: {e}") from e


def load_agent_file(path: Path) -> AgentConfig:
    """An agent config from a local JSON file (``--config``).

    Raises:
        AgentLookupError: The file cannot be read or is not an agent config.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AgentLookupError(f"{path} cannot be read as JSON: {e}") from e
    return read_agent_config(data)


def with_env_judge(suite: ScenarioSuite) -> ScenarioSuite:
    """The suite with its judge's ``{"secret": NAME}`` key taken from the environment."""
    if suite.judge_llm is None:
        return suite
    options = _with_env_secrets({"options": suite.judge_llm.options})["options"]
    return suite.model_copy(
        update={"judge_llm": suite.judge_llm.model_copy(update={"options": options})}
    )


def _with_env_secrets(value: Any) -> Any:
    """``{"secret": NAME}`` → ``$NAME``; left out where the variable is not set (a provider then
    looks for its own key variable, as a worker does)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if _is_ref(item):
                env = os.environ.get(item["secret"])
                if env is not None:
                    out[key] = env
            else:
                out[key] = _with_env_secrets(item)
        return out
    if isinstance(value, list):
        return [_with_env_secrets(v) for v in value]
    return value


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secret"} and isinstance(value["secret"], str)


def print_results(result: SuiteResult, console: Console) -> None:
    """Pass or fail per scenario; for a failure, the turn, the check and what happened."""
    for scenario in result.scenarios:
        name = escape(scenario.name)
        if scenario.passed:
            console.print(f"[green]PASS[/green] {name}  ({len(scenario.checks)} checks)")
            continue
        console.print(f"[red]FAIL[/red] {name}")
        failed = scenario.failed_check
        if failed is not None:
            console.print(f"     turn {failed.turn}: {escape(failed.check)}")
            if failed.detail:
                console.print(f"     [dim]{escape(failed.detail)}[/dim]")
        if scenario.error:
            console.print(f"     [red]{escape(scenario.error)}[/red]")
    for warning in result.warnings:
        console.print(f"[yellow]Note:[/yellow] {escape(warning)}")
    passed = sum(s.passed for s in result.scenarios)
    colour = "green" if result.passed else "red"
    console.print(
        f"[{colour}]{passed} of {len(result.scenarios)} scenarios passed[/{colour}] "
        f"in {result.duration_s:.1f} s"
    )
