"""Telephony operations against LiveKit, through ``sip.provisioning``.

LiveKit failures become the control plane's ``LiveKitUnavailable`` / ``LiveKitRejected``; a
dial that the far end refused or did not answer becomes ``DialFailed`` with the SIP status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from livekit import api
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import crud
from control_plane.core.config import Settings
from control_plane.errors import LiveKitError
from control_plane.livekit import LiveKit, livekit_error
from control_plane.models import VoiceSession
from control_plane.security import SecretBox
from control_plane.telephony import crud as phone_crud
from control_plane.telephony.config import TelephonySettings
from control_plane.telephony.models import CallOutcome, PhoneCall, PhoneNumber
from sip import provisioning
from stimm import tracing
from stimm.schema import JobMetadata

logger = logging.getLogger("stimm.control_plane")

REQUEST_TIMEOUT_S = 10.0
RINGING_TIMED_OUT = 408
"""The HTTP status of livekit's answer to a dial that nobody answered (Twirp ``canceled``)."""


@dataclass
class DialFailed(Exception):
    """The callee's side refused, was busy or did not answer."""

    outcome: CallOutcome
    sip_status: int | None
    reason: str

    def __str__(self) -> str:
        return self.reason


@asynccontextmanager
async def livekit_api(settings: Settings) -> AsyncIterator[api.LiveKitAPI]:
    """A LiveKit API client; LiveKit errors raised inside become the control plane's own."""
    url = settings.livekit_url
    try:
        async with api.LiveKitAPI(
            url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        ) as lk:
            yield lk
    except api.SipCallError:
        raise
    except (api.TwirpError, aiohttp.ClientError, TimeoutError, OSError) as e:
        raise livekit_error(url, e) from e


def inbound_spec(row: PhoneNumber, box: SecretBox) -> provisioning.InboundNumber:
    return provisioning.InboundNumber(
        number=row.number,
        agent_id=row.agent_id,
        allowed_addresses=tuple(row.allowed_addresses),
        auth_username=row.auth_username or "",
        auth_password=box.decrypt(row.auth_password) if row.auth_password else "",
    )


async def apply_number(
    settings: Settings, row: PhoneNumber, box: SecretBox
) -> provisioning.Provisioned:
    """Make LiveKit route calls to ``row.number`` to its agent (idempotent)."""
    async with livekit_api(settings) as lk:
        # unassigned numbers are refused at once rather than left ringing
        await provisioning.ensure_unassigned_trunk(
            lk, settings.livekit_api_secret.get_secret_value()
        )
        return await provisioning.ensure_inbound_number(lk, inbound_spec(row, box))


async def remove_number(settings: Settings, number: str) -> None:
    async with livekit_api(settings) as lk:
        await provisioning.remove_inbound_number(lk, number)


async def dial(
    settings: Settings,
    telephony: TelephonySettings,
    *,
    to: str,
    room: str,
    identity: str,
    ringing_timeout_s: float | None = None,
) -> api.SIPParticipantInfo:
    """Call ``to`` through the outbound trunk into ``room``; returns once answered.

    ``ringing_timeout_s`` overrides ``STIMM_SIP_RINGING_TIMEOUT``.
    """
    trunk = provisioning.OutboundTrunk(
        address=telephony.outbound_address,
        number=telephony.outbound_number,
        transport=telephony.outbound_transport,
        auth_username=telephony.outbound_username,
        auth_password=telephony.outbound_password.get_secret_value(),
    )
    async with livekit_api(settings) as lk:
        trunk_id = await provisioning.ensure_outbound_trunk(lk, trunk)
        try:
            return await provisioning.dial(
                lk,
                trunk_id=trunk_id,
                to=to,
                room=room,
                identity=identity,
                ringing_timeout_s=ringing_timeout_s or telephony.ringing_timeout_s,
            )
        except api.SipCallError as e:
            status = e.sip_status_code
            outcome: CallOutcome = (
                "busy"
                if status in (486, 600)
                else "no-answer"
                if status in (408, 480, 487) or status is None
                else "failed"
            )
            reason = f"the call was not answered: SIP {status or '?'} {e.sip_status or e.message}"
            raise DialFailed(outcome=outcome, sip_status=status, reason=reason.strip()) from e
        except api.TwirpError as e:
            if e.status != RINGING_TIMED_OUT:
                raise
            # livekit-sip gave up ringing: Twirp "canceled" (HTTP 408), no SIP status
            reason = f"the call was not answered within {telephony.ringing_timeout_s:g} s"
            raise DialFailed(outcome="no-answer", sip_status=None, reason=reason) from e


CALLEE_IDENTITY = "phone-callee"


@dataclass
class CallNotPlaced(Exception):
    """The call record exists (outcome and reason set, session failed), but nobody answered."""

    call: PhoneCall
    error: LiveKitError | DialFailed

    def __str__(self) -> str:
        return str(self.error)


async def place_call(
    db: AsyncSession,
    settings: Settings,
    livekit: LiveKit,
    telephony: TelephonySettings,
    *,
    agent_id: str,
    to: str,
    variables: dict[str, str] | None = None,
    campaign_id: str | None = None,
    on_created: Callable[[PhoneCall, VoiceSession], Awaitable[None]] | None = None,
) -> tuple[PhoneCall, VoiceSession]:
    """Record the call, dispatch the agent to its room and dial ``to``; returns once answered.

    ``on_created`` runs once the call record exists, before anything is dialled.

    Raises ``CallNotPlaced`` (with the failed call record) when it was not answered.
    """
    voice_session, call = await phone_crud.create_phone_call(
        db,
        agent_id=agent_id,
        direction="outbound",
        caller=telephony.outbound_number,
        callee=to,
        participant_identity=CALLEE_IDENTITY,
        campaign_id=campaign_id,
    )
    tracing.tag_current_span(voice_session.id, agent_id)
    if on_created is not None:
        await on_created(call, voice_session)
    metadata = JobMetadata(
        agent_id=agent_id,
        session_id=voice_session.id,
        channel="phone",
        caller=to,
        outbound=True,
        variables=variables or {},
    )
    try:
        await livekit.create_room_and_dispatch(
            voice_session.room,
            metadata,
            on_dispatch=lambda token: crud.set_session_dispatch(db, voice_session, token),
        )
        await _agent_joined(livekit, voice_session.room)
        info = await dial(
            settings, telephony, to=to, room=voice_session.room, identity=CALLEE_IDENTITY
        )
    except (LiveKitError, DialFailed) as e:
        logger.warning("call %s failed: %s", call.id, e)
        call.outcome = e.outcome if isinstance(e, DialFailed) else "failed"
        call.sip_status = e.sip_status if isinstance(e, DialFailed) else None
        call.failure_reason = str(e)
        db.add(call)
        await crud.mark_session_failed(db, voice_session, str(e))
        raise CallNotPlaced(call=call, error=e) from e
    call.outcome = "answered"
    call.sip_call_id = info.sip_call_id or None
    db.add(call)
    await db.commit()
    logger.info("call %s answered (session %s)", call.id, voice_session.id)
    return call, voice_session


async def sync_numbers(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, box: SecretBox
) -> None:
    """Re-apply every stored phone number to LiveKit (at startup: LiveKit's Redis may be new).

    Best effort: a LiveKit that cannot be reached is logged, and each change re-applies its
    number anyway.
    """
    async with sessionmaker() as db:
        rows = await phone_crud.list_phone_numbers(db)
    try:
        async with livekit_api(settings) as lk:
            await provisioning.ensure_unassigned_trunk(
                lk, settings.livekit_api_secret.get_secret_value()
            )
            await provisioning.sync_inbound_numbers(lk, [inbound_spec(r, box) for r in rows])
    except (LiveKitError, api.TwirpError) as e:
        logger.warning("phone numbers not applied to LiveKit at startup: %s", e)
        return
    logger.info("%d phone number(s) applied to LiveKit", len(rows))


AGENT_JOIN_WAIT_S = 10.0
"""How long an outbound call waits for its agent in the room before dialling anyway."""
AGENT_JOIN_POLL_S = 0.1


async def _agent_joined(livekit: LiveKit, room: str) -> None:
    """Wait until the agent is in ``room``: a callee answers and speaks at once, and the
    agent's answering-machine detection needs those first words. The dispatch returns as soon
    as a worker took the job, before its agent joined the room (~0.3 s later)."""
    deadline = time.monotonic() + AGENT_JOIN_WAIT_S
    while time.monotonic() < deadline:
        if await livekit.agent_in_room(room):
            return
        await asyncio.sleep(AGENT_JOIN_POLL_S)
    logger.warning("room %s: no agent after %.0f s; dialling anyway", room, AGENT_JOIN_WAIT_S)
