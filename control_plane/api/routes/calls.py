"""Phone calls: place an outbound call, read call records (the worker registers inbound calls
through ``worker_api.py``)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from control_plane import crud
from control_plane.api.deps import DbDep, LiveKitDep, Offset, SettingsDep
from control_plane.api.routes.agents import agent_not_found
from control_plane.errors import LiveKitUnavailable
from control_plane.models import TurnPublic
from control_plane.telephony import crud as phone_crud
from control_plane.telephony import service
from control_plane.telephony.models import (
    CallCreate,
    CallPublic,
    CallsPublic,
    call_public,
)

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/calls", tags=["calls"])


def _call_not_found(call_id: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"Call {call_id} not found")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {"description": "Outbound calling is not configured"},
        502: {"description": "The call was refused, busy or not answered; see the call record"},
        503: {"description": "LiveKit is unreachable; retry later"},
    },
)
async def create_call(
    db: DbDep, settings: SettingsDep, livekit: LiveKitDep, call_in: CallCreate
) -> CallPublic:
    """Have an agent phone ``to``: returns once the callee answered (the agent greets them)."""
    telephony = settings.telephony
    if not telephony.outbound_address:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail="Outbound calling is not configured (set STIMM_SIP_OUTBOUND_ADDRESS)",
        )
    agent = await crud.get_agent(db, call_in.agent_id)
    if agent is None:
        raise agent_not_found(call_in.agent_id)
    try:
        call, voice_session = await service.place_call(
            db, settings, livekit, telephony, agent_id=agent.id, to=call_in.to
        )
    except service.CallNotPlaced as e:
        unavailable = isinstance(e.error, LiveKitUnavailable)
        raise HTTPException(
            status_code=(
                status.HTTP_503_SERVICE_UNAVAILABLE if unavailable else status.HTTP_502_BAD_GATEWAY
            ),
            detail=f"Could not place the call: {e}",
        ) from e
    return call_public(call, voice_session)


@router.get("")
async def list_calls(
    db: DbDep,
    agent_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> CallsPublic:
    """Phone calls, newest first, optionally of one agent."""
    rows, count = await phone_crud.list_calls(db, agent_id=agent_id, limit=limit, offset=offset)
    return CallsPublic(items=[call_public(c, s) for c, s in rows], count=count)


@router.get("/{call_id}", responses={404: {"description": "No such call"}})
async def get_call(db: DbDep, call_id: str) -> CallPublic:
    """One call: caller, callee, outcome and the transcript."""
    found = await phone_crud.get_call(db, call_id)
    if found is None:
        raise _call_not_found(call_id)
    call, voice_session = found
    turns = await crud.list_turns(db, voice_session.id)
    return call_public(
        call, voice_session, [TurnPublic.model_validate(t, from_attributes=True) for t in turns]
    )
