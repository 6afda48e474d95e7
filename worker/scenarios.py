"""Run an agent's test scenarios in text mode: no room, no audio, no LiveKit server.

Each scenario gets a fresh livekit ``AgentSession`` with the agent's LLM and the agent the
worker would build (instructions, webhook / end_call / transfer_call tools, MCP servers); each
turn is ``AgentSession.run(user_input=...)``, and the checks are livekit's ``RunResult.expect``
assertions (``contains_message``, ``contains_function_call``, ``judge``). Only the knowledge
base is left out: retrieval goes through the worker's own route.

``python -m worker.scenarios`` reads a ``stimm.scenarios.ScenarioJob`` as JSON on stdin and
writes the ``SuiteResult`` as JSON on stdout: how the control plane runs scenarios without
importing the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from livekit.agents import AgentSession, llm
from livekit.agents.voice.run_result import (
    ChatMessageEvent,
    FunctionCallEvent,
    FunctionCallOutputEvent,
    RunResult,
    mock_tools,
)

from stimm.egress import egress_client
from stimm.scenarios import (
    Check,
    CheckResult,
    Scenario,
    ScenarioJob,
    ScenarioResult,
    ScenarioSuite,
    SuiteResult,
    ToolCallSpec,
)
from stimm.schema import AgentConfig, ProviderSpec
from worker.mcp_tools import unavailable_notice
from worker.providers import build_llm
from worker.session import StimmAgent, build_agent, build_agent_llm, llm_connect_options

logger = logging.getLogger("stimm.worker")

TURN_TIMEOUT_S = 60.0
"""How long one turn (the reply and its tool calls) may take."""

NO_KNOWLEDGE = "The knowledge base is not searched in text mode; answers that need it may fail."


async def run_suite(
    config: AgentConfig,
    suite: ScenarioSuite,
    *,
    secrets: Mapping[str, str] | None = None,
    http: httpx.AsyncClient | None = None,
    turn_timeout_s: float = TURN_TIMEOUT_S,
) -> SuiteResult:
    """Run every scenario of ``suite`` against the agent ``config`` describes.

    Args:
        config: The agent config (secret references already replaced by their values).
        suite: The scenarios.
        secrets: Provider keys by environment-variable name, as the worker gets them.
        http: The client webhook tools call through; an egress-checked one by default.
        turn_timeout_s: How long one turn may take before the scenario fails.

    Raises:
        ValueError: The agent's or the judge's LLM cannot be built (unknown provider, no key).
    """
    started = time.monotonic()
    agent_llm = build_agent_llm(config, secrets=secrets)
    judge = _judge_llm(suite.judge_llm, secrets) or agent_llm
    warnings = [NO_KNOWLEDGE] if config.knowledge_base_id else []
    results: list[ScenarioResult] = []
    client = http or egress_client()
    try:
        for scenario in suite.scenarios:
            runner = _ScenarioRun(config, scenario, agent_llm, judge, client, turn_timeout_s)
            results.append(await runner.run(warnings))
    finally:
        if http is None:
            await client.aclose()
    return SuiteResult(
        passed=all(r.passed for r in results),
        scenarios=results,
        duration_s=round(time.monotonic() - started, 2),
        warnings=warnings,
    )


def _judge_llm(spec: ProviderSpec | None, secrets: Mapping[str, str] | None) -> llm.LLM[Any] | None:
    return build_llm(spec, secrets=secrets) if spec is not None else None


class _ScenarioRun:
    """One scenario in a session of its own, stopped at its first failed check."""

    def __init__(
        self,
        config: AgentConfig,
        scenario: Scenario,
        agent_llm: llm.LLM[Any],
        judge: llm.LLM[Any],
        http: httpx.AsyncClient,
        turn_timeout_s: float,
    ) -> None:
        self.config = config
        self.scenario = scenario
        self.agent_llm = agent_llm
        self.judge = judge
        self.http = http
        self.turn_timeout_s = turn_timeout_s
        self.checks: list[CheckResult] = []
        self.transcript: list[str] = []

    def _result(self, error: str | None = None) -> ScenarioResult:
        passed = error is None and all(c.passed for c in self.checks)
        return ScenarioResult(
            name=self.scenario.name,
            passed=passed,
            checks=self.checks,
            error=error,
            transcript=self.transcript,
        )

    async def run(self, warnings: list[str]) -> ScenarioResult:
        session: AgentSession[None] = AgentSession(
            llm=self.agent_llm, conn_options=llm_connect_options(self.config)
        )
        agent = build_agent(self.config, http=self.http, control_plane=None)
        try:
            await session.start(agent)
            notice = unavailable_notice(agent.tool_servers)
            if notice and notice not in warnings:
                warnings.append(notice)
            if self.scenario.mock_tools:
                mock_tools(StimmAgent, _mocks(self.scenario.mock_tools), session=session)
            for number, turn in enumerate(self.scenario.turns, start=1):
                self.transcript.append(f"user: {turn.user}")
                try:
                    result: RunResult[None] = await asyncio.wait_for(
                        session.run(user_input=turn.user), timeout=self.turn_timeout_s
                    )
                except TimeoutError:
                    return self._result(
                        f"turn {number}: no answer within {self.turn_timeout_s:g} s"
                    )
                self.transcript.extend(_transcript(result))
                for check in turn.expect:
                    outcome = await self._check(number, check, result)
                    self.checks.append(outcome)
                    if not outcome.passed:
                        return self._result()
            return self._result()
        except Exception as e:  # the LLM or a tool failed the whole turn
            logger.warning("scenario %r stopped: %r", self.scenario.name, e)
            return self._result(f"{type(e).__name__}: {e}")
        finally:
            await session.aclose()

    async def _check(self, turn: int, check: Check, result: RunResult[None]) -> CheckResult:
        label = check.label()
        try:
            detail = await _verdict(check, result, self.judge)
        except AssertionError as e:  # livekit's own assertions
            detail = str(e).split("\nContext around failure:")[0]
            detail = f"{detail} ({_what_happened(result)})"
        except Exception as e:  # the judge LLM failed
            detail = f"the check could not be made: {type(e).__name__}: {e}"
        return CheckResult(turn=turn, check=label, passed=detail is None, detail=detail)


async def _verdict(check: Check, result: RunResult[None], judge: llm.LLM[Any]) -> str | None:
    """``None`` when ``check`` holds for the turn, else what the agent did instead.

    Raises:
        AssertionError: From livekit's ``RunResult.expect``, when it finds the check failed.
    """
    replies = _replies(result)
    if check.says is not None:
        result.expect.contains_message(role="assistant")
        if any(check.says.lower() in text.lower() for text in replies):
            return None
        return f"the agent said {_quote(replies)}"
    if check.not_says is not None:
        said = [text for text in replies if check.not_says.lower() in text.lower()]
        return f"the agent said {_quote(said)}" if said else None
    if check.calls is not None:
        spec = check.calls if isinstance(check.calls, ToolCallSpec) else None
        name = spec.name if spec else str(check.calls)
        if spec is not None and spec.arguments:
            result.expect.contains_function_call(name=name, arguments=spec.arguments)
        else:
            result.expect.contains_function_call(name=name)
        return None
    if check.not_calls is not None:
        try:
            call = result.expect.contains_function_call(name=check.not_calls)
        except AssertionError:
            return None
        return f"the agent called {call.event().item.name}({call.event().item.arguments})"
    assert check.judge is not None
    last = _last_reply_index(result)
    if last is None:
        result.expect.contains_message(role="assistant")  # raises: no reply to judge
        return "the agent did not reply"
    await result.expect[last].is_message(role="assistant").judge(judge, intent=check.judge)
    return None


def _replies(result: RunResult[None]) -> list[str]:
    return [
        e.item.text_content or ""
        for e in result.events
        if isinstance(e, ChatMessageEvent) and e.item.role == "assistant"
    ]


def _last_reply_index(result: RunResult[None]) -> int | None:
    for i in range(len(result.events) - 1, -1, -1):
        event = result.events[i]
        if isinstance(event, ChatMessageEvent) and event.item.role == "assistant":
            return i
    return None


def _quote(texts: list[str]) -> str:
    if not texts:
        return "nothing"
    return " / ".join(json.dumps(t, ensure_ascii=False) for t in texts)


def _what_happened(result: RunResult[None]) -> str:
    calls = [
        f"{e.item.name}({e.item.arguments})"
        for e in result.events
        if isinstance(e, FunctionCallEvent)
    ]
    said = _quote(_replies(result))
    return f"the agent called {', '.join(calls)} and said {said}" if calls else f"it said {said}"


def _transcript(result: RunResult[None]) -> list[str]:
    lines: list[str] = []
    for e in result.events:
        if isinstance(e, ChatMessageEvent) and e.item.role == "assistant":
            lines.append(f"agent: {e.item.text_content or ''}")
        elif isinstance(e, FunctionCallEvent):
            lines.append(f"tool call: {e.item.name}({e.item.arguments})")
        elif isinstance(e, FunctionCallOutputEvent):
            kind = "tool error" if e.item.is_error else "tool result"
            lines.append(f"{kind}: {e.item.output[:500]}")
    return lines


def _mocks(answers: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """Tools that answer what the scenario says instead of running (livekit's ``mock_tools``)."""

    def answer(value: Any) -> Callable[[], str]:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return lambda: text

    return {name: answer(value) for name, value in answers.items()}


def _main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    job = ScenarioJob.model_validate_json(sys.stdin.buffer.read())
    try:
        result = asyncio.run(run_suite(job.config, job.suite, secrets=job.config.secrets))
    except ValueError as e:  # the LLM cannot be built from the config
        sys.stdout.write(json.dumps({"error": str(e)}))
        return
    sys.stdout.write(result.model_dump_json())


if __name__ == "__main__":
    _main()
