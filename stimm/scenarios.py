"""Agent test scenarios: the user's turns as text and checks on what the agent does.

A scenario file (YAML) per agent, run in text mode without LiveKit by ``worker/scenarios.py``
(``stimm test-agent``, or the console through the control plane)::

    judge_llm: {provider: openai, model: gpt-4o-mini}   # optional; default: the agent's LLM
    scenarios:
      - name: Opening hours
        mock_tools: {get_hours: {sunday: "2-6 pm"}}     # optional: answers instead of calls
        turns:
          - user: When is the museum open?
            expect:
              - calls: get_hours                       # or {name: get_hours, arguments: {...}}
              - says: Sunday                           # case-insensitive, in a reply
              - not_says: Monday
              - not_calls: transfer_call
              - judge: Tells the caller when the museum opens

Both the control plane (validating a saved file) and the worker (running it) import these
models; results come back in the same shapes.
"""

from __future__ import annotations

import json
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stimm.schema import ProviderSpec, WorkerAgentConfig

MAX_FILE_CHARS = 100_000

CHECK_KINDS = ("says", "not_says", "calls", "not_calls", "judge")


class ToolCallSpec(BaseModel):
    """A tool call the agent must make: its name and, optionally, some of its arguments."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    arguments: dict[str, Any] | None = None
    """Each given argument must have this value; others are not looked at."""


class Check(BaseModel):
    """One expectation on a turn; exactly one of the fields is set."""

    model_config = ConfigDict(extra="forbid")

    says: str | None = Field(default=None, min_length=1, max_length=500)
    """One of the agent's replies in the turn contains this text (case-insensitive)."""
    not_says: str | None = Field(default=None, min_length=1, max_length=500)
    """None of the agent's replies in the turn contains this text (case-insensitive)."""
    calls: str | ToolCallSpec | None = None
    """The agent called this tool in the turn (a name, or a name and arguments)."""
    not_calls: str | None = Field(default=None, min_length=1, max_length=64)
    """The agent did not call this tool in the turn."""
    judge: str | None = Field(default=None, min_length=1, max_length=2_000)
    """An LLM judges that the agent's last reply in the turn does this (livekit's ``judge``)."""

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [str(k) for k, v in data.items() if v is not None]  # as serialized: nulls
            if len(given) != 1 or given[0] not in CHECK_KINDS:
                raise ValueError(
                    f"a check has exactly one of {', '.join(CHECK_KINDS)} "
                    f"(got {', '.join(given) or 'nothing'})"
                )
        return data

    @property
    def kind(self) -> str:
        return next(k for k in CHECK_KINDS if getattr(self, k) is not None)

    def label(self) -> str:
        """The check as the user wrote it, e.g. ``says "Sunday"``."""
        if isinstance(self.calls, ToolCallSpec):
            if self.calls.arguments:
                return f"calls {self.calls.name} with {json.dumps(self.calls.arguments)}"
            return f"calls {self.calls.name}"
        value = getattr(self, self.kind)
        if self.kind in ("calls", "not_calls"):
            return f"{self.kind.replace('_', ' ')} {value}"
        return f"{self.kind.replace('_', ' ')} {json.dumps(value, ensure_ascii=False)}"


class Turn(BaseModel):
    """What the user types, and what must hold of the agent's answer."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=4_000)
    expect: list[Check] = Field(default_factory=list, max_length=20)


class Scenario(BaseModel):
    """A conversation: its turns run in order in one session."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    turns: list[Turn] = Field(min_length=1, max_length=20)
    mock_tools: dict[str, Any] = Field(default_factory=dict)
    """Tool name → what the tool answers, instead of running it (a webhook is not called)."""


class ScenarioSuite(BaseModel):
    """A scenario file."""

    model_config = ConfigDict(extra="forbid")

    judge_llm: ProviderSpec | None = None
    """The LLM for ``judge`` checks; the agent's first LLM when unset. Its ``api_key`` may
    only be a ``{"secret": NAME}`` reference: the file is not a place for keys."""
    scenarios: list[Scenario] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_names_and_no_keys(self) -> Self:
        seen: set[str] = set()
        for scenario in self.scenarios:
            if scenario.name in seen:
                raise ValueError(f"two scenarios are named {scenario.name!r}")
            seen.add(scenario.name)
        if self.judge_llm is not None and isinstance(self.judge_llm.options.get("api_key"), str):
            raise ValueError(
                'judge_llm.options.api_key must be a {"secret": NAME} reference, not a key'
            )
        return self


class ScenarioFileError(ValueError):
    """A scenario file that is not YAML or not a valid suite.

    Attributes:
        problems: ``(location, message)`` pairs; the location is a path into the file, e.g.
            ``("scenarios", 0, "turns", 1, "expect", 0)``, empty for a YAML syntax error.
    """

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(_describe(loc, msg) for loc, msg in problems))


def _describe(loc: tuple[str | int, ...], msg: str) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return f"{path}: {msg}" if path else msg


def parse_scenarios(text: str) -> ScenarioSuite:
    """The suite a YAML scenario file describes.

    Raises:
        ScenarioFileError: Saying where the file is wrong (line and column for YAML syntax).
    """
    if len(text) > MAX_FILE_CHARS:
        raise ScenarioFileError([((), f"the file is longer than {MAX_FILE_CHARS} characters")])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioFileError([((), f"not valid YAML: {where}{problem}")]) from e
    if not isinstance(data, dict):
        raise ScenarioFileError([((), "the file must be a mapping with a 'scenarios' list")])
    try:
        return ScenarioSuite.model_validate(data)
    except ValidationError as e:
        problems = [
            (tuple(err["loc"]), str(err["msg"]).removeprefix("Value error, ")) for err in e.errors()
        ]
        raise ScenarioFileError(problems) from e


# --- results ----------------------------------------------------------------------------------


class CheckResult(BaseModel):
    """One check of one turn, passed or not."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    turn: int
    """1-based number of the turn."""
    check: str
    """The check as written, e.g. ``says "Sunday"``."""
    passed: bool
    detail: str | None = None
    """Why it failed: what the agent did instead."""


class ScenarioResult(BaseModel):
    """A scenario's outcome: it passes when every check of every turn passed.

    The scenario stops at its first failed check (later turns would build on a wrong answer).
    """

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    name: str
    passed: bool
    checks: list[CheckResult] = Field(default_factory=list)
    error: str | None = None
    """Why the scenario could not run to its end (the LLM failed, a turn timed out)."""
    transcript: list[str] = Field(default_factory=list)
    """The conversation as it went: ``user: ...``, ``agent: ...``, ``tool call: ...``."""

    @property
    def failed_check(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.passed), None)


class SuiteResult(BaseModel):
    """The outcome of a scenario file."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    passed: bool
    scenarios: list[ScenarioResult]
    duration_s: float
    warnings: list[str] = Field(default_factory=list)
    """What text mode left out (a knowledge base, MCP servers that did not connect)."""


class ScenarioJob(BaseModel):
    """What the control plane hands ``python -m worker.scenarios`` on its stdin."""

    config: WorkerAgentConfig
    suite: ScenarioSuite
