"""Database operations on publishable keys ("not found" is ``None``)."""

from __future__ import annotations

import secrets

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.models import utcnow
from control_plane.widget.models import (
    PUBLISHABLE_KEY_PREFIX,
    PublishableKey,
    PublishableKeyCreate,
)


def new_publishable_key() -> str:
    return PUBLISHABLE_KEY_PREFIX + secrets.token_urlsafe(24)


async def create_publishable_key(db: AsyncSession, key_in: PublishableKeyCreate) -> PublishableKey:
    row = PublishableKey(
        name=key_in.name,
        key=new_publishable_key(),
        agent_ids=key_in.agent_ids,
        allowed_origins=key_in.allowed_origins,
    )
    db.add(row)
    await db.commit()
    return row


async def find_active_publishable_key(db: AsyncSession, key: str) -> PublishableKey | None:
    if not key.startswith(PUBLISHABLE_KEY_PREFIX):
        return None
    rows = await db.exec(
        select(PublishableKey).where(
            col(PublishableKey.key) == key, col(PublishableKey.revoked_at).is_(None)
        )
    )
    return rows.first()


async def any_active_key_allows(db: AsyncSession, origin: str) -> bool:
    """Whether some active key lists ``origin`` (a normalized origin)."""
    rows = await db.exec(
        select(PublishableKey.allowed_origins).where(col(PublishableKey.revoked_at).is_(None))
    )
    return any(origin in origins for origins in rows.all())


async def get_publishable_key(db: AsyncSession, key_id: str) -> PublishableKey | None:
    return await db.get(PublishableKey, key_id)


async def list_publishable_keys(
    db: AsyncSession, *, limit: int, offset: int
) -> tuple[list[PublishableKey], int]:
    count = (await db.exec(select(func.count()).select_from(PublishableKey))).one()
    rows = await db.exec(
        select(PublishableKey)
        .order_by(col(PublishableKey.created_at).desc(), col(PublishableKey.id))
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), count


async def revoke_publishable_key(db: AsyncSession, row: PublishableKey) -> PublishableKey:
    """Revoke a key; revoking twice keeps the first time."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.add(row)
        await db.commit()
    return row
