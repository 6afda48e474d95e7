"""Database operations on API keys and encrypted provider secrets ("not found" is ``None``)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.errors import LastActiveApiKey
from control_plane.models import ApiKey, Secret, utcnow
from control_plane.security import SecretBox, display_prefix, hash_api_key, new_api_key

# --- API keys ---------------------------------------------------------------------------------


async def create_api_key(db: AsyncSession, name: str, key: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key (``key`` or a generated one); returns the row and the key itself."""
    key = key or new_api_key()
    row = ApiKey(name=name, prefix=display_prefix(key), key_hash=hash_api_key(key))
    db.add(row)
    await db.commit()
    return row, key


async def find_active_api_key(db: AsyncSession, key: str) -> ApiKey | None:
    rows = await db.exec(
        select(ApiKey).where(
            col(ApiKey.key_hash) == hash_api_key(key), col(ApiKey.revoked_at).is_(None)
        )
    )
    return rows.first()


async def get_api_key(db: AsyncSession, key_id: str) -> ApiKey | None:
    return await db.get(ApiKey, key_id)


async def list_api_keys(
    db: AsyncSession, *, limit: int = 500, offset: int = 0
) -> tuple[list[ApiKey], int]:
    count = (await db.exec(select(func.count()).select_from(ApiKey))).one()
    rows = await db.exec(
        select(ApiKey)
        .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), count


async def count_api_keys(db: AsyncSession) -> int:
    """Every key ever created, revoked ones included (bootstrap happens once)."""
    return (await db.exec(select(func.count()).select_from(ApiKey))).one()


async def revoke_api_key(db: AsyncSession, key: ApiKey) -> ApiKey:
    """Revoke a key; revoking twice keeps the first time.

    Raises ``LastActiveApiKey`` rather than revoke the only active key: without one, the API
    could not be used again (not even to create a key).
    """
    if key.revoked_at is not None:
        return key
    # the row locks (PostgreSQL) make two revocations at once count the keys one after the other
    active = (
        await db.exec(select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).with_for_update())
    ).all()
    if list(active) == [key.id]:
        key_id = key.id
        await db.rollback()
        raise LastActiveApiKey(
            f"API key {key_id} is the last active key; create another key first, then revoke "
            "this one"
        )
    key.revoked_at = utcnow()
    db.add(key)
    await db.commit()
    return key


# --- secrets ----------------------------------------------------------------------------------


async def put_secret(db: AsyncSession, box: SecretBox, name: str, value: str) -> Secret:
    row = await db.get(Secret, name)
    if row is None:
        row = Secret(name=name, ciphertext=box.encrypt(value))
    else:
        row.ciphertext = box.encrypt(value)
        row.updated_at = utcnow()
    db.add(row)
    await db.commit()
    return row


async def list_secrets(db: AsyncSession) -> list[Secret]:
    return list((await db.exec(select(Secret).order_by(col(Secret.name)))).all())


async def get_secret(db: AsyncSession, name: str) -> Secret | None:
    return await db.get(Secret, name)


async def delete_secret(db: AsyncSession, row: Secret) -> None:
    await db.delete(row)
    await db.commit()


async def decrypt_secrets(db: AsyncSession, box: SecretBox, names: set[str]) -> dict[str, str]:
    """The values of those of ``names`` that are set."""
    if not names:
        return {}
    rows = await db.exec(select(Secret).where(col(Secret.name).in_(sorted(names))))
    return {row.name: box.decrypt(row.ciphertext) for row in rows.all()}
