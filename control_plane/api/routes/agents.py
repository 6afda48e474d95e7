"""Agents: what a voice agent says and which providers it runs on."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from control_plane import crud
from control_plane.api.deps import SessionDep
from control_plane.models import Agent, AgentCreate, AgentPublic, AgentsPublic, AgentUpdate

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/agents", tags=["agents"])


def agent_not_found(agent_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND, detail=f"Agent {agent_id} not found"
    )


def _public(agent: Agent) -> AgentPublic:
    return AgentPublic.model_validate(agent, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(db: SessionDep, agent_in: AgentCreate) -> AgentPublic:
    """Create an agent."""
    agent = await crud.create_agent(db, agent_in)
    logger.info("agent %s created", agent.id)
    return _public(agent)


@router.get("")
async def list_agents(
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AgentsPublic:
    """List agents, newest first."""
    agents, count = await crud.list_agents(db, limit=limit, offset=offset)
    return AgentsPublic(items=[_public(a) for a in agents], count=count)


@router.get("/{agent_id}")
async def get_agent(db: SessionDep, agent_id: str) -> AgentPublic:
    """Get one agent."""
    agent = await crud.get_agent(db, agent_id)
    if agent is None:
        raise agent_not_found(agent_id)
    return _public(agent)


@router.patch("/{agent_id}")
async def update_agent(db: SessionDep, agent_id: str, agent_in: AgentUpdate) -> AgentPublic:
    """Change some fields of an agent."""
    agent = await crud.get_agent(db, agent_id)
    if agent is None:
        raise agent_not_found(agent_id)
    try:
        agent = await crud.update_agent(db, agent, agent_in)
    except ValidationError as e:
        # Report the merged config's errors like any other body error: 422, located in the body.
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in e.errors()]
        ) from e
    logger.info("agent %s updated", agent.id)
    return _public(agent)
