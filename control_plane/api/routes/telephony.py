"""The phone service as the console shows it: is livekit-sip up, and what do callers dial."""

from __future__ import annotations

from typing import Literal

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, Field

from control_plane.api.deps import SettingsDep
from control_plane.probes import probe_client

router = APIRouter(prefix="/telephony", tags=["phone numbers"])

HEALTH_TIMEOUT_S = 2.0


class TelephonyStatus(BaseModel):
    sip: Literal["up", "down", "unknown"] = Field(
        description="livekit-sip's health; unknown when STIMM_SIP_HEALTH_URL is not set"
    )
    sip_address: str | None = Field(description="host:port callers and SIP trunks send calls to")
    dial_uri_template: str | None = Field(
        description="What a softphone dials, with {number} standing for a phone number"
    )
    outbound_calls: bool = Field(description="Whether POST /api/calls can place calls")


async def _sip_health(url: str) -> Literal["up", "down", "unknown"]:
    if not url:
        return "unknown"
    try:
        async with probe_client(HEALTH_TIMEOUT_S) as http:
            resp = await http.get(url)
    except httpx.HTTPError:
        return "down"
    return "up" if resp.is_success else "down"


@router.get("")
async def telephony_status(cp_settings: SettingsDep) -> TelephonyStatus:
    """Whether the SIP service is up and which address callers use."""
    settings = cp_settings.telephony
    address = settings.sip_address or None
    return TelephonyStatus(
        sip=await _sip_health(settings.sip_health_url),
        sip_address=address,
        dial_uri_template=f"sip:{{number}}@{address}" if address else None,
        outbound_calls=bool(settings.outbound_address),
    )
