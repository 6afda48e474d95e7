"""Agents: what a voice agent says and which providers it runs on."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from control_plane import crud
from control_plane.agent_secrets import store_secrets
from control_plane.api.deps import (
    AgentPagesDep,
    CacheDep,
    ChangesDep,
    DbDep,
    Offset,
    SecretBoxDep,
)
from control_plane.changes import AGENTS
from control_plane.errors import AgentInUse, DefaultAgentConflict
from control_plane.models import Agent, AgentCreate, AgentPublic, AgentsPublic, AgentUpdate
from control_plane.validation import as_body_errors, ensure_valid

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/agents", tags=["agents"])


class AgentDuplicate(BaseModel):
    """Body of ``POST /api/agents/{id}/duplicate``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)


def agent_not_found(agent_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND, detail=f"Agent {agent_id} not found"
    )


def _public(agent: Agent) -> AgentPublic:
    return AgentPublic.model_validate(agent, from_attributes=True)


async def _existing(db: DbDep, agent_id: str) -> Agent:
    agent = await crud.get_agent(db, agent_id)
    if agent is None:
        raise agent_not_found(agent_id)
    return agent


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(
    db: DbDep, box: SecretBoxDep, changes: ChangesDep, agent_in: AgentCreate
) -> AgentPublic:
    """Create an agent; the first one becomes the default. API keys and webhook header values
    are stored as secrets, and the agent keeps ``{"secret": NAME}`` references to them."""
    await ensure_valid(db, agent_in)
    agent = await crud.create_agent(db, await store_secrets(db, box, agent_in))
    await changes.publish(AGENTS, agent.id)
    logger.info("agent %s created", agent.id)
    return _public(agent)


@router.get("", response_model=AgentsPublic)
async def list_agents(
    db: DbDep,
    pages: AgentPagesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Response:
    """List agents, newest first."""
    version = await pages.version(lambda: crud.agents_version(db))
    body = pages.get(version, limit, offset)
    if body is None:
        agents = await crud.list_agents(db, limit=limit, offset=offset)
        page = AgentsPublic(items=[_public(a) for a in agents], count=version[0])
        body = page.model_dump_json().encode()
        # kept only when no write landed between the two reads (each sees its own snapshot)
        if await crud.agents_version(db) == version:
            pages.put(version, limit, offset, body)
    return Response(body, media_type="application/json")


@router.get("/default", responses={404: {"description": "There is no agent yet"}})
async def get_default_agent(db: DbDep) -> AgentPublic:
    """The agent that answers when none is named."""
    agent = await crud.get_default_agent(db)
    if agent is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="No default agent")
    return _public(agent)


@router.get("/{agent_id}", responses={404: {"description": "No such agent"}})
async def get_agent(db: DbDep, agent_id: str) -> AgentPublic:
    """Get one agent."""
    return _public(await _existing(db, agent_id))


@router.patch("/{agent_id}", responses={404: {"description": "No such agent"}})
async def update_agent(
    db: DbDep,
    cache: CacheDep,
    box: SecretBoxDep,
    changes: ChangesDep,
    agent_id: str,
    agent_in: AgentUpdate,
) -> AgentPublic:
    """Change some fields of an agent; calls already running keep the old config. Send a
    ``{"secret": NAME}`` reference back as it was read to keep a stored key."""
    agent = await _existing(db, agent_id)
    try:
        merged = crud.merge_agent_update(agent, agent_in)
    except ValidationError as e:
        raise as_body_errors(e) from e
    await ensure_valid(db, merged)
    agent = await crud.update_agent(db, agent, await store_secrets(db, box, merged))
    await cache.invalidate(agent.id)
    await changes.publish(AGENTS, agent.id)
    logger.info("agent %s updated", agent.id)
    return _public(agent)


@router.delete(
    "/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        404: {"description": "No such agent"},
        409: {"description": "Sessions refer to the agent"},
    },
)
async def delete_agent(db: DbDep, cache: CacheDep, changes: ChangesDep, agent_id: str) -> Response:
    """Delete an agent that has no recorded sessions."""
    agent = await _existing(db, agent_id)
    try:
        await crud.delete_agent(db, agent)
    except AgentInUse as e:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(e)) from e
    await cache.invalidate(agent_id)
    await changes.publish(AGENTS, agent_id)
    logger.info("agent %s deleted", agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{agent_id}/duplicate",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "No such agent"}},
)
async def duplicate_agent(
    db: DbDep, changes: ChangesDep, agent_id: str, body: AgentDuplicate | None = None
) -> AgentPublic:
    """Copy an agent under a new id (named "<name> (copy)" unless a name is given)."""
    agent = await _existing(db, agent_id)
    copy = await crud.duplicate_agent(db, agent, body.name if body else None)
    await changes.publish(AGENTS, copy.id)
    logger.info("agent %s duplicated as %s", agent_id, copy.id)
    return _public(copy)


@router.put(
    "/{agent_id}/default",
    responses={
        404: {"description": "No such agent"},
        409: {"description": "Other requests are changing the default at the same time"},
    },
)
async def make_default_agent(db: DbDep, changes: ChangesDep, agent_id: str) -> AgentPublic:
    """Make this agent the default (and no other)."""
    try:
        agent = await crud.set_default_agent(db, await _existing(db, agent_id))
    except DefaultAgentConflict as e:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(e)) from e
    await changes.publish(AGENTS, agent_id)
    logger.info("agent %s is now the default", agent_id)
    return _public(agent)
