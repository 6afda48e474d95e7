"""Webhook endpoints of the deployment's call events, and each endpoint's delivery log."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError

from control_plane import credentials
from control_plane.api.deps import DbDep, Offset, PostCallDep, SecretBoxDep
from control_plane.models import utcnow
from control_plane.postcall import crud
from control_plane.postcall.models import (
    DeliveryStatus,
    WebhookDeliveriesPublic,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPublic,
    WebhookEndpointsPublic,
    WebhookEndpointUpdate,
)
from stimm.egress import EgressPolicy, EgressRefused

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such endpoint (or delivery)"}
}
_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "The URL is invalid or the egress policy refuses it"}
}


def endpoint_not_found(endpoint_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND, detail=f"Webhook endpoint {endpoint_id} not found"
    )


def _invalid(field: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, on ``field`` of the body (the console places it)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


async def _check_egress(url: str) -> None:
    try:
        await asyncio.to_thread(EgressPolicy.from_env().check_url, url)
    except EgressRefused as e:
        raise _invalid("url", f"Webhook URL refused: {e}") from e


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _delivery_public(row: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic.model_validate(
        {
            **row.model_dump(),
            "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            "payload": json.loads(row.body),
        }
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=_REFUSED)
async def create_webhook(
    db: DbDep, box: SecretBoxDep, endpoint_in: WebhookEndpointCreate
) -> WebhookEndpointCreated:
    """Add an endpoint; the response is the only one that shows its signing secret."""
    await _check_egress(endpoint_in.url)
    endpoint = WebhookEndpoint(
        url=endpoint_in.url,
        description=endpoint_in.description,
        events=list(dict.fromkeys(endpoint_in.events)),
        enabled=endpoint_in.enabled,
        secret_name="",
    )
    endpoint.secret_name = f"WEBHOOK_{endpoint.id.replace('-', '')[:12].upper()}_SECRET"
    secret = endpoint_in.secret or _new_secret()
    await credentials.put_secret(db, box, endpoint.secret_name, secret)
    db.add(endpoint)
    await db.commit()
    logger.info("webhook endpoint %s created for %s", endpoint.id, ", ".join(endpoint.events))
    public = WebhookEndpointPublic.model_validate(endpoint)
    return WebhookEndpointCreated(**public.model_dump(), secret=secret)


@router.get("")
async def list_webhooks(
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> WebhookEndpointsPublic:
    """List webhook endpoints, newest first."""
    rows, count = await crud.list_endpoints(db, limit=limit, offset=offset)
    return WebhookEndpointsPublic(
        items=[WebhookEndpointPublic.model_validate(r) for r in rows], count=count
    )


@router.get("/{endpoint_id}", responses=_NOT_FOUND)
async def get_webhook(db: DbDep, endpoint_id: str) -> WebhookEndpointPublic:
    """One endpoint (never its secret)."""
    endpoint = await crud.get_endpoint(db, endpoint_id)
    if endpoint is None:
        raise endpoint_not_found(endpoint_id)
    return WebhookEndpointPublic.model_validate(endpoint)


@router.patch("/{endpoint_id}", responses={**_NOT_FOUND, **_REFUSED})
async def update_webhook(
    db: DbDep, box: SecretBoxDep, endpoint_id: str, endpoint_in: WebhookEndpointUpdate
) -> WebhookEndpointPublic:
    """Change an endpoint's URL, events, description, state or signing secret."""
    endpoint = await crud.get_endpoint(db, endpoint_id)
    if endpoint is None:
        raise endpoint_not_found(endpoint_id)
    changes = endpoint_in.model_dump(exclude_unset=True)
    for field in ("url", "events", "enabled"):
        if field in changes and changes[field] is None:
            raise _invalid(field, f"{field} cannot be null")
    if "url" in changes:
        await _check_egress(changes["url"])
    if secret := changes.pop("secret", None):
        await credentials.put_secret(db, box, endpoint.secret_name, secret)
    if "events" in changes:
        changes["events"] = list(dict.fromkeys(changes["events"]))
    endpoint.sqlmodel_update(changes)
    endpoint.updated_at = utcnow()
    db.add(endpoint)
    await db.commit()
    return WebhookEndpointPublic.model_validate(endpoint)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_webhook(db: DbDep, endpoint_id: str) -> Response:
    """Delete an endpoint, its secret and its delivery log."""
    endpoint = await crud.get_endpoint(db, endpoint_id)
    if endpoint is None:
        raise endpoint_not_found(endpoint_id)
    secret = await credentials.get_secret(db, endpoint.secret_name)
    if secret is not None:
        await db.delete(secret)
    await db.delete(endpoint)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{endpoint_id}/deliveries", responses=_NOT_FOUND)
async def list_deliveries(
    db: DbDep,
    endpoint_id: str,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> WebhookDeliveriesPublic:
    """The endpoint's delivery log, newest first: each event, its attempts and answer."""
    if await crud.get_endpoint(db, endpoint_id) is None:
        raise endpoint_not_found(endpoint_id)
    rows, count = await crud.list_deliveries(
        db, endpoint_id, status=delivery_status, limit=limit, offset=offset
    )
    return WebhookDeliveriesPublic(items=[_delivery_public(r) for r in rows], count=count)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_NOT_FOUND,
)
async def resend_delivery(
    db: DbDep, postcall: PostCallDep, endpoint_id: str, delivery_id: str
) -> WebhookDeliveryPublic:
    """Send a delivery's event again (same body and event id) as a new delivery."""
    delivery = await crud.get_delivery(db, endpoint_id, delivery_id)
    if delivery is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"Delivery {delivery_id} of endpoint {endpoint_id} not found",
        )
    copy = await crud.resend(db, delivery)
    postcall.deliveries.wake()
    return _delivery_public(copy)
