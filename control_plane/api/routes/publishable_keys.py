"""Publishable keys of the embeddable widget: create, list, revoke (API key required)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from control_plane import crud
from control_plane.api.deps import DbDep, Offset
from control_plane.api.routes.agents import agent_not_found
from control_plane.widget import crud as widget_crud
from control_plane.widget.models import (
    PublishableKeyCreate,
    PublishableKeyPublic,
    PublishableKeysPublic,
)

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/publishable-keys", tags=["publishable-keys"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "One of the agents does not exist"}},
)
async def create_publishable_key(db: DbDep, key_in: PublishableKeyCreate) -> PublishableKeyPublic:
    """Create a key the widget can start sessions with, for these agents and origins only."""
    for agent_id in key_in.agent_ids:
        if await crud.get_agent(db, agent_id) is None:
            raise agent_not_found(agent_id)
    row = await widget_crud.create_publishable_key(db, key_in)
    logger.info("publishable key %s created for %d agent(s)", row.id, len(row.agent_ids))
    return PublishableKeyPublic.model_validate(row)


@router.get("")
async def list_publishable_keys(
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> PublishableKeysPublic:
    """List publishable keys, newest first, revoked ones included."""
    rows, count = await widget_crud.list_publishable_keys(db, limit=limit, offset=offset)
    return PublishableKeysPublic(
        items=[PublishableKeyPublic.model_validate(r) for r in rows], count=count
    )


@router.delete("/{key_id}", responses={404: {"description": "No such key"}})
async def revoke_publishable_key(db: DbDep, key_id: str) -> PublishableKeyPublic:
    """Revoke a key: widgets using it can start no session from now on."""
    row = await widget_crud.get_publishable_key(db, key_id)
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND, detail=f"Publishable key {key_id} not found"
        )
    row = await widget_crud.revoke_publishable_key(db, row)
    logger.info("publishable key %s revoked", row.id)
    return PublishableKeyPublic.model_validate(row)
