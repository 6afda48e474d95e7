"""API keys: create (the key is shown once), list, revoke."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from control_plane import credentials
from control_plane.api.deps import ChangesDep, DbDep, Offset
from control_plane.changes import API_KEYS
from control_plane.errors import LastActiveApiKey
from control_plane.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(db: DbDep, key_in: ApiKeyCreate) -> ApiKeyCreated:
    """Create a key. The response is the only time the key itself is shown."""
    row, key = await credentials.create_api_key(db, key_in.name)
    logger.info("API key %s (%s) created", row.id, row.prefix)
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.get("")
async def list_api_keys(
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> ApiKeysPublic:
    """List keys (never the keys themselves), newest first, revoked ones included."""
    rows, count = await credentials.list_api_keys(db, limit=limit, offset=offset)
    return ApiKeysPublic(items=[ApiKeyPublic.model_validate(r) for r in rows], count=count)


@router.delete(
    "/{key_id}",
    responses={
        404: {"description": "No such key"},
        409: {"description": "It is the last active key; create another one first"},
    },
)
async def revoke_api_key(db: DbDep, changes: ChangesDep, key_id: str) -> ApiKeyPublic:
    """Revoke a key: requests using it are refused from now on. The last active key stays."""
    row = await credentials.get_api_key(db, key_id)
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND, detail=f"API key {key_id} not found"
        )
    try:
        row = await credentials.revoke_api_key(db, row)
    except LastActiveApiKey as e:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(e)) from e
    await changes.publish(API_KEYS, row.id)
    logger.info("API key %s (%s) revoked", row.id, row.prefix)
    return ApiKeyPublic.model_validate(row)
