"""Campaigns: an agent phones a CSV of numbers; start, pause, resume, cancel, progress."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, status

from control_plane import crud
from control_plane.api.deps import CampaignRunnerDep, DbDep
from control_plane.api.routes.agents import agent_not_found
from control_plane.campaigns import crud as campaign_crud
from control_plane.campaigns.models import (
    Campaign,
    CampaignCreate,
    CampaignPublic,
    CampaignRow,
    CampaignRowsPublic,
    CampaignsPublic,
    CampaignStatus,
)
from control_plane.campaigns.rows import MAX_PROBLEMS, parse_csv
from control_plane.models import Agent
from stimm.placeholders import placeholders

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


def _not_found(campaign_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND, detail=f"Campaign {campaign_id} not found"
    )


def _agent_placeholders(agent: Agent) -> set[str]:
    config = agent.to_config()
    return (
        placeholders(config.instructions)
        | placeholders(config.greeting)
        | placeholders(config.voicemail.message)
    )


def _unprocessable(problems: list[str]) -> HTTPException:
    shown = problems[:MAX_PROBLEMS]
    more = len(problems) - len(shown)
    return HTTPException(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", "csv"], "msg": p, "type": "value_error"} for p in shown]
        + (
            [{"loc": ["body", "csv"], "msg": f"... and {more} more", "type": "value_error"}]
            if more
            else []
        ),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "A row or the header is wrong; each problem has its line"}},
)
async def create_campaign(
    db: DbDep, runner: CampaignRunnerDep, body: CampaignCreate
) -> CampaignPublic:
    """Create a campaign from a CSV and start it (calls begin inside the calling window)."""
    agent = await crud.get_agent(db, body.agent_id)
    if agent is None:
        raise agent_not_found(body.agent_id)
    parsed = parse_csv(body.csv, body.timezone)
    if parsed.problems:
        raise _unprocessable(parsed.problems)
    missing = sorted(_agent_placeholders(agent) - set(parsed.columns))
    if missing:
        raise _unprocessable(
            [
                f"line 1: the agent's texts use {{{name}}} but the CSV has no {name!r} column"
                for name in missing
            ]
        )
    campaign = Campaign(
        **body.model_dump(exclude={"csv", "window_start", "window_end", "start"}),
        status="running" if body.start else "draft",
        window_start=body.window_start.strftime("%H:%M"),
        window_end=body.window_end.strftime("%H:%M"),
        columns=parsed.columns,
    )
    db.add(campaign)
    await db.flush()
    for r in parsed.rows:
        db.add(
            CampaignRow(
                campaign_id=campaign.id,
                position=r.line,
                number=r.number,
                timezone=r.timezone,
                variables=r.variables,
            )
        )
    await db.commit()
    await db.refresh(campaign)
    logger.info("campaign %s created with %d rows", campaign.id, len(parsed.rows))
    runner.wake()
    return await campaign_crud.campaign_public(db, campaign)


@router.get("")
async def list_campaigns(db: DbDep) -> CampaignsPublic:
    """Campaigns, newest first, with their progress."""
    rows = await campaign_crud.list_campaigns(db)
    items = [await campaign_crud.campaign_public(db, c) for c in rows]
    return CampaignsPublic(items=items, count=len(items))


@router.get("/{campaign_id}", responses={404: {"description": "No such campaign"}})
async def get_campaign(db: DbDep, campaign_id: str) -> CampaignPublic:
    """One campaign and its progress."""
    campaign = await campaign_crud.get_campaign(db, campaign_id)
    if campaign is None:
        raise _not_found(campaign_id)
    return await campaign_crud.campaign_public(db, campaign)


@router.get("/{campaign_id}/rows", responses={404: {"description": "No such campaign"}})
async def list_campaign_rows(db: DbDep, campaign_id: str) -> CampaignRowsPublic:
    """Each row: its number, variables, status, outcome and the calls placed for it."""
    if await campaign_crud.get_campaign(db, campaign_id) is None:
        raise _not_found(campaign_id)
    items = await campaign_crud.list_rows(db, campaign_id)
    return CampaignRowsPublic(items=items, count=len(items))


_MOVES: dict[str, tuple[tuple[CampaignStatus, ...], CampaignStatus]] = {
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "cancel": (("draft", "running", "paused"), "cancelled"),
}


async def _move(
    db: DbDep, runner: CampaignRunnerDep, campaign_id: str, action: str
) -> CampaignPublic:
    campaign = await campaign_crud.get_campaign(db, campaign_id)
    if campaign is None:
        raise _not_found(campaign_id)
    allowed, target = _MOVES[action]
    if campaign.status not in allowed:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"Campaign {campaign_id} is {campaign.status}; it cannot {action}",
        )
    campaign = await campaign_crud.set_status(db, campaign, target)
    logger.info("campaign %s: %s", campaign_id, target)
    runner.wake()
    return await campaign_crud.campaign_public(db, campaign)


_MOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such campaign"},
    409: {"description": "Not possible from the campaign's status"},
}


@router.post("/{campaign_id}/start", responses=_MOVE_RESPONSES)
async def start_campaign(db: DbDep, runner: CampaignRunnerDep, campaign_id: str) -> CampaignPublic:
    """Start a draft campaign."""
    return await _move(db, runner, campaign_id, "start")


@router.post("/{campaign_id}/pause", responses=_MOVE_RESPONSES)
async def pause_campaign(db: DbDep, runner: CampaignRunnerDep, campaign_id: str) -> CampaignPublic:
    """Place no new calls (calls under way finish)."""
    return await _move(db, runner, campaign_id, "pause")


@router.post("/{campaign_id}/resume", responses=_MOVE_RESPONSES)
async def resume_campaign(db: DbDep, runner: CampaignRunnerDep, campaign_id: str) -> CampaignPublic:
    """Place calls again."""
    return await _move(db, runner, campaign_id, "resume")


@router.post("/{campaign_id}/cancel", responses=_MOVE_RESPONSES)
async def cancel_campaign(db: DbDep, runner: CampaignRunnerDep, campaign_id: str) -> CampaignPublic:
    """Stop for good: rows not called yet are cancelled (calls under way finish)."""
    return await _move(db, runner, campaign_id, "cancel")
