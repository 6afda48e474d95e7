"""Phone numbers: which agent answers calls to which number, applied to LiveKit SIP on change."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Response, status

from control_plane import crud
from control_plane.api.deps import DbDep, SecretBoxDep, SettingsDep
from control_plane.api.routes.agents import agent_not_found
from control_plane.errors import LiveKitError, LiveKitUnavailable
from control_plane.models import utcnow
from control_plane.telephony import crud as phone_crud
from control_plane.telephony import service
from control_plane.telephony.models import (
    PhoneNumber,
    PhoneNumberCreate,
    PhoneNumberPublic,
    PhoneNumbersPublic,
    PhoneNumberUpdate,
)

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/phone-numbers", tags=["phone numbers"])

_LIVEKIT_ERRORS: dict[int | str, dict[str, str]] = {
    502: {"description": "LiveKit refused the SIP trunk or dispatch rule"},
    503: {"description": "LiveKit is unreachable; retry later"},
}


def _livekit_failed(e: LiveKitError) -> HTTPException:
    unavailable = isinstance(e, LiveKitUnavailable)
    return HTTPException(
        status_code=(
            status.HTTP_503_SERVICE_UNAVAILABLE if unavailable else status.HTTP_502_BAD_GATEWAY
        ),
        detail=f"Could not apply the phone number to LiveKit: {e}",
        headers={"Retry-After": "5"} if unavailable else None,
    )


def _not_found(number_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND, detail=f"Phone number {number_id} not found"
    )


def _check_auth(username: str | None, password: str | None) -> None:
    if bool(username) != bool(password):
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="auth_username and auth_password go together",
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The number is already assigned"}, **_LIVEKIT_ERRORS},
)
async def create_phone_number(
    db: DbDep, settings: SettingsDep, box: SecretBoxDep, number_in: PhoneNumberCreate
) -> PhoneNumberPublic:
    """Assign a number to an agent; calls to it ring that agent from now on."""
    if await crud.get_agent(db, number_in.agent_id) is None:
        raise agent_not_found(number_in.agent_id)
    _check_auth(number_in.auth_username, number_in.auth_password)
    if await phone_crud.find_phone_number(db, number_in.number) is not None:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail="This number is already assigned to an agent; edit that assignment instead",
        )
    row = PhoneNumber.model_validate(number_in.model_dump())
    if number_in.auth_password:
        row.auth_password = box.encrypt(number_in.auth_password)
    try:
        provisioned = await service.apply_number(settings, row, box)
    except LiveKitError as e:
        logger.warning("phone number not applied: %s", e)
        raise _livekit_failed(e) from e
    row.trunk_id = provisioned.trunk_id
    row.dispatch_rule_id = provisioned.dispatch_rule_id
    db.add(row)
    await db.commit()
    logger.info("phone number %s assigned to agent %s", row.id, row.agent_id)
    return PhoneNumberPublic.of(row)


@router.get("")
async def list_phone_numbers(db: DbDep) -> PhoneNumbersPublic:
    """All phone numbers and the agents they ring."""
    rows = await phone_crud.list_phone_numbers(db)
    return PhoneNumbersPublic(items=[PhoneNumberPublic.of(r) for r in rows], count=len(rows))


@router.get("/{number_id}", responses={404: {"description": "No such phone number"}})
async def get_phone_number(db: DbDep, number_id: str) -> PhoneNumberPublic:
    """One phone number."""
    row = await phone_crud.get_phone_number(db, number_id)
    if row is None:
        raise _not_found(number_id)
    return PhoneNumberPublic.of(row)


@router.patch(
    "/{number_id}", responses={404: {"description": "No such phone number"}, **_LIVEKIT_ERRORS}
)
async def update_phone_number(
    db: DbDep,
    settings: SettingsDep,
    box: SecretBoxDep,
    number_id: str,
    number_in: PhoneNumberUpdate,
) -> PhoneNumberPublic:
    """Route a number to another agent, or change who may call it; applied to LiveKit."""
    row = await phone_crud.get_phone_number(db, number_id)
    if row is None:
        raise _not_found(number_id)
    changes = number_in.model_dump(exclude_unset=True)
    if changes.get("agent_id") and await crud.get_agent(db, changes["agent_id"]) is None:
        raise agent_not_found(changes["agent_id"])
    if changes.get("agent_id") is None:
        changes.pop("agent_id", None)
    if changes.get("auth_password"):
        changes["auth_password"] = box.encrypt(changes["auth_password"])
    row.sqlmodel_update(changes)
    _check_auth(row.auth_username, row.auth_password)
    try:
        provisioned = await service.apply_number(settings, row, box)
    except LiveKitError as e:
        await db.rollback()
        raise _livekit_failed(e) from e
    row.trunk_id = provisioned.trunk_id
    row.dispatch_rule_id = provisioned.dispatch_rule_id
    row.updated_at = utcnow()
    db.add(row)
    await db.commit()
    return PhoneNumberPublic.of(row)


@router.delete(
    "/{number_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No such phone number"}, **_LIVEKIT_ERRORS},
)
async def delete_phone_number(db: DbDep, settings: SettingsDep, number_id: str) -> Response:
    """Release a number: calls to it are refused from now on."""
    row = await phone_crud.get_phone_number(db, number_id)
    if row is None:
        raise _not_found(number_id)
    try:
        await service.remove_number(settings, row.number)
    except LiveKitError as e:
        raise _livekit_failed(e) from e
    await db.delete(row)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
