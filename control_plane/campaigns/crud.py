"""Database operations for campaigns; "not found" is ``None``."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.campaigns.models import (
    Campaign,
    CampaignAttempt,
    CampaignAttemptPublic,
    CampaignProgress,
    CampaignPublic,
    CampaignRow,
    CampaignRowPublic,
    CampaignStatus,
)
from control_plane.models import utcnow


async def get_campaign(db: AsyncSession, campaign_id: str) -> Campaign | None:
    return await db.get(Campaign, campaign_id)


async def list_campaigns(db: AsyncSession) -> list[Campaign]:
    rows = await db.exec(select(Campaign).order_by(col(Campaign.created_at).desc()))
    return list(rows.all())


async def running_campaigns(db: AsyncSession) -> list[Campaign]:
    rows = await db.exec(select(Campaign).where(col(Campaign.status) == "running"))
    return list(rows.all())


async def progress(db: AsyncSession, campaign_id: str) -> CampaignProgress:
    rows = (
        await db.exec(
            select(CampaignRow.status, CampaignRow.outcome).where(
                col(CampaignRow.campaign_id) == campaign_id
            )
        )
    ).all()
    statuses = Counter(s for s, _ in rows)
    outcomes = Counter(o for s, o in rows if s == "done" and o is not None)
    calls = (
        await db.exec(
            select(func.count())
            .select_from(CampaignAttempt)
            .join(CampaignRow, col(CampaignRow.id) == col(CampaignAttempt.row_id))
            .where(col(CampaignRow.campaign_id) == campaign_id)
        )
    ).one()
    return CampaignProgress(
        total=len(rows),
        pending=statuses["pending"],
        calling=statuses["calling"],
        done=statuses["done"],
        cancelled=statuses["cancelled"],
        outcomes=dict(outcomes),
        calls=calls,
    )


async def campaign_public(db: AsyncSession, campaign: Campaign) -> CampaignPublic:
    return CampaignPublic.model_validate(
        {**campaign.model_dump(), "progress": await progress(db, campaign.id)}
    )


async def list_rows(db: AsyncSession, campaign_id: str) -> list[CampaignRowPublic]:
    rows = (
        await db.exec(
            select(CampaignRow)
            .where(col(CampaignRow.campaign_id) == campaign_id)
            .order_by(col(CampaignRow.position))
        )
    ).all()
    attempts = (
        await db.exec(
            select(CampaignAttempt)
            .join(CampaignRow, col(CampaignRow.id) == col(CampaignAttempt.row_id))
            .where(col(CampaignRow.campaign_id) == campaign_id)
            .order_by(col(CampaignAttempt.number))
        )
    ).all()
    by_row: dict[str, list[CampaignAttemptPublic]] = {}
    for a in attempts:
        by_row.setdefault(a.row_id, []).append(
            CampaignAttemptPublic.model_validate(a, from_attributes=True)
        )
    return [
        CampaignRowPublic.model_validate({**r.model_dump(), "calls": by_row.get(r.id, [])})
        for r in rows
    ]


async def set_status(db: AsyncSession, campaign: Campaign, status: CampaignStatus) -> Campaign:
    campaign.status = status
    campaign.updated_at = utcnow()
    db.add(campaign)
    if status == "cancelled":  # rows not called yet stay uncalled; calls under way finish
        await db.exec(
            update(CampaignRow)
            .where(
                col(CampaignRow.campaign_id) == campaign.id, col(CampaignRow.status) == "pending"
            )
            .values(status="cancelled", updated_at=utcnow())
        )
    await db.commit()
    await db.refresh(campaign)
    return campaign


async def calling_count(db: AsyncSession, campaign_id: str) -> int:
    return (
        await db.exec(
            select(func.count())
            .select_from(CampaignRow)
            .where(
                col(CampaignRow.campaign_id) == campaign_id, col(CampaignRow.status) == "calling"
            )
        )
    ).one()


async def due_rows(
    db: AsyncSession, campaign_id: str, now: datetime, limit: int
) -> list[CampaignRow]:
    rows = await db.exec(
        select(CampaignRow)
        .where(
            col(CampaignRow.campaign_id) == campaign_id,
            col(CampaignRow.status) == "pending",
            col(CampaignRow.next_attempt_at) <= now,
        )
        .order_by(col(CampaignRow.next_attempt_at), col(CampaignRow.position))
        .limit(limit)
    )
    return list(rows.all())


async def stale_rows(db: AsyncSession, campaign_id: str, now: datetime) -> list[CampaignRow]:
    """Rows being called by a control plane that stopped renewing its lease."""
    rows = await db.exec(
        select(CampaignRow).where(
            col(CampaignRow.campaign_id) == campaign_id,
            col(CampaignRow.status) == "calling",
            col(CampaignRow.lease_expires_at) < now,
        )
    )
    return list(rows.all())


async def lease_row(
    db: AsyncSession,
    row: CampaignRow,
    *,
    owner: str,
    until: datetime,
    from_status: str,
    now: datetime,
) -> bool:
    """Take ``row`` for ``owner`` (one conditional UPDATE: one replica wins)."""
    query = update(CampaignRow).where(
        col(CampaignRow.id) == row.id, col(CampaignRow.status) == from_status
    )
    if from_status == "calling":
        query = query.where(col(CampaignRow.lease_expires_at) < now)
    result = await db.exec(
        query.values(status="calling", lease_owner=owner, lease_expires_at=until, updated_at=now)
    )
    await db.commit()
    return bool(result.rowcount)


async def renew_lease(db: AsyncSession, row_id: str, owner: str, until: datetime) -> None:
    await db.exec(
        update(CampaignRow)
        .where(col(CampaignRow.id) == row_id, col(CampaignRow.lease_owner) == owner)
        .values(lease_expires_at=until)
    )
    await db.commit()


async def last_attempt(db: AsyncSession, row_id: str) -> CampaignAttempt | None:
    rows = await db.exec(
        select(CampaignAttempt)
        .where(col(CampaignAttempt.row_id) == row_id)
        .order_by(col(CampaignAttempt.number).desc())
        .limit(1)
    )
    return rows.first()


async def unfinished_count(db: AsyncSession, campaign_id: str) -> int:
    return (
        await db.exec(
            select(func.count())
            .select_from(CampaignRow)
            .where(
                col(CampaignRow.campaign_id) == campaign_id,
                col(CampaignRow.status).in_(("pending", "calling")),
            )
        )
    ).one()
