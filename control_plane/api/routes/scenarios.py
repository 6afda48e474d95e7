"""An agent's test scenarios: a YAML file of user turns and checks, run in text mode."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError

from control_plane import crud
from control_plane.api.deps import DbDep, ScenarioRunnerDep, SecretBoxDep
from control_plane.api.routes.agents import agent_not_found
from control_plane.errors import (
    ScenarioAgentUnbuildable,
    ScenarioRunError,
    ScenarioRunsBusy,
    ScenarioTimeout,
    SecretDecryptionError,
    SecretMissing,
)
from control_plane.models import Agent
from control_plane.scenarios import crud as scenario_crud
from control_plane.scenarios.models import AgentScenarios, ScenariosIn, ScenariosPublic
from control_plane.worker_config import worker_agent_config
from stimm.catalog import secrets_needed
from stimm.scenarios import (
    ScenarioFileError,
    ScenarioJob,
    ScenarioSuite,
    SuiteResult,
    parse_scenarios,
)
from stimm.schema import SecretRef

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/agents/{agent_id}/scenarios", tags=["scenarios"])

_RUN_ERRORS: dict[type[ScenarioRunError], int] = {
    ScenarioRunsBusy: status.HTTP_429_TOO_MANY_REQUESTS,
    ScenarioTimeout: status.HTTP_504_GATEWAY_TIMEOUT,
    ScenarioAgentUnbuildable: status.HTTP_409_CONFLICT,
}


async def _agent(db: DbDep, agent_id: str) -> Agent:
    agent = await crud.get_agent(db, agent_id)
    if agent is None:
        raise agent_not_found(agent_id)
    return agent


def _public(agent_id: str, row: AgentScenarios | None) -> ScenariosPublic:
    if row is None:
        return ScenariosPublic(agent_id=agent_id)
    return ScenariosPublic(
        agent_id=agent_id,
        yaml=row.yaml,
        updated_at=row.updated_at,
        last_run=SuiteResult.model_validate(row.last_run) if row.last_run else None,
        last_run_at=row.last_run_at,
    )


def _file_errors(error: ScenarioFileError) -> RequestValidationError:
    errors: list[dict[str, Any]] = [
        {"type": "value_error", "loc": ("body", "yaml", *loc), "msg": msg}
        for loc, msg in error.problems
    ]
    return RequestValidationError(errors)


@router.get("", responses={404: {"description": "No such agent"}})
async def get_scenarios(db: DbDep, agent_id: str) -> ScenariosPublic:
    """The agent's scenario file (empty if none is saved) and the result of its last run."""
    await _agent(db, agent_id)
    return _public(agent_id, await scenario_crud.get_scenarios(db, agent_id))


@router.put("", responses={404: {"description": "No such agent"}})
async def save_scenarios(db: DbDep, agent_id: str, body: ScenariosIn) -> ScenariosPublic:
    """Save the agent's scenario file; a file that is not a valid suite gets 422 saying where."""
    await _agent(db, agent_id)
    try:
        parse_scenarios(body.yaml)
    except ScenarioFileError as e:
        raise _file_errors(e) from e
    row = await scenario_crud.save_scenarios(db, agent_id, body.yaml)
    logger.info("agent %s: scenarios saved", agent_id)
    return _public(agent_id, row)


@router.post(
    "/run",
    responses={
        404: {"description": "No such agent"},
        409: {"description": "No scenarios saved, or the agent's LLM cannot be built"},
        429: {"description": "STIMM_SCENARIO_MAX_RUNS runs are going on"},
        504: {"description": "The run took longer than STIMM_SCENARIO_TIMEOUT_S"},
    },
)
async def run_scenarios(
    db: DbDep, box: SecretBoxDep, runner: ScenarioRunnerDep, agent_id: str
) -> SuiteResult:
    """Run the saved scenarios against the agent's current config, in text mode (its LLM and
    tools, no audio); the result is kept as the last run."""
    agent = await _agent(db, agent_id)
    row = await scenario_crud.get_scenarios(db, agent_id)
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"Agent {agent_id} has no scenarios yet; save a file first",
        )
    suite = parse_scenarios(row.yaml)
    job = await _job(db, box, agent, suite)
    try:
        result = await runner.run(job)
    except ScenarioRunError as e:
        code = _RUN_ERRORS.get(type(e), status.HTTP_500_INTERNAL_SERVER_ERROR)
        headers = {"Retry-After": "10"} if isinstance(e, ScenarioRunsBusy) else None
        raise HTTPException(status_code=code, detail=str(e), headers=headers) from e
    await scenario_crud.record_run(db, agent_id, row.yaml, result)
    logger.info("agent %s: scenarios %s", agent_id, "passed" if result.passed else "failed")
    return result


async def _job(db: DbDep, box: SecretBoxDep, agent: Agent, suite: ScenarioSuite) -> ScenarioJob:
    """The agent's config as the worker would get it, and the suite with the judge's key."""
    judge = suite.judge_llm
    judge_key = judge.options.get("api_key") if judge is not None else None
    judge_ref = SecretRef.model_validate(judge_key).secret if isinstance(judge_key, dict) else None
    extra = set(secrets_needed("llm", judge)) if judge is not None else set()
    try:
        config = await worker_agent_config(
            db, box, agent.id, agent.to_config(), also=extra | ({judge_ref} if judge_ref else set())
        )
    except SecretDecryptionError as e:
        raise HTTPException(status_code=status.HTTP_500_INTERNAL_SERVER_ERROR, detail=str(e)) from e
    except SecretMissing as e:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(e)) from e
    if judge is not None and judge_ref is not None:
        value = config.secrets.get(judge_ref)
        if value is None:
            raise HTTPException(
                status_code=status.HTTP_409_CONFLICT,
                detail=f"The scenarios' judge_llm refers to secret {judge_ref}, which is not set",
            )
        judge = judge.model_copy(update={"options": {**judge.options, "api_key": value}})
        suite = suite.model_copy(update={"judge_llm": judge})
    return ScenarioJob(config=config, suite=suite)
