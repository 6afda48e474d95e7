"""Provider secrets: write-only, encrypted at rest, reported only as set or not set."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from control_plane import credentials
from control_plane.api.deps import DbDep, SecretBoxDep
from control_plane.models import SecretIn, SecretsPublic, SecretStatus
from stimm.catalog import CATALOG, SECRET_NAMES
from stimm.schema import SECRET_NAME_PATTERN

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/secrets", tags=["secrets"])

SecretName = Annotated[
    str,
    Path(
        pattern=SECRET_NAME_PATTERN,
        max_length=64,
        description="Environment-style name, e.g. OPENAI_API_KEY",
    ),
]


def _used_by(name: str) -> list[str]:
    return [
        f"{role}/{provider.name}"
        for role, providers in CATALOG.items()
        for provider in providers.values()
        if name in provider.secrets
    ]


@router.get("")
async def list_secrets(db: DbDep) -> SecretsPublic:
    """Every secret a provider needs plus any other stored one, with whether it is set."""
    stored = {s.name: s for s in await credentials.list_secrets(db)}
    names = sorted(set(SECRET_NAMES) | set(stored))
    return SecretsPublic(
        items=[
            SecretStatus(
                name=name,
                set=name in stored,
                updated_at=stored[name].updated_at if name in stored else None,
                used_by=_used_by(name),
            )
            for name in names
        ]
    )


@router.put("/{name}")
async def put_secret(
    db: DbDep, box: SecretBoxDep, name: SecretName, secret_in: SecretIn
) -> SecretStatus:
    """Set or replace a secret. The value can never be read back through the API."""
    row = await credentials.put_secret(db, box, name, secret_in.value)
    logger.info("secret %s set", name)
    return SecretStatus(name=name, set=True, updated_at=row.updated_at, used_by=_used_by(name))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "The secret is not set"}},
)
async def delete_secret(db: DbDep, name: SecretName) -> Response:
    """Remove a secret."""
    row = await credentials.get_secret(db, name)
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND, detail=f"Secret {name} is not set"
        )
    await credentials.delete_secret(db, row)
    logger.info("secret %s deleted", name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
