"""The campaign runner: a background task of every control plane that places campaigns' calls.

Each tick, for every running campaign: rows whose lease expired (their control plane stopped
mid-call) are taken over and their last attempt watched to its end, never dialled again unless
nobody could answer it (livekit-server cancels a dial whose requester went away); then
due rows inside their calling window are leased, up to the campaign's concurrency, and called.
An attempt is recorded (unique key ``<row>:<n>``) before its call is placed and bound to the
call's session as soon as that exists, so a restart finds every call it placed. The outcome of
an answered call is its session's: the worker reports who answered (``answered_by``) and when
the call ended. A little over 300 lines: the lease, the take-over and the call of a row read
best as one loop in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import time, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import crud as control_plane_crud
from control_plane.campaigns import crud
from control_plane.campaigns.models import AttemptOutcome, Campaign, CampaignAttempt, CampaignRow
from control_plane.campaigns.rows import in_window
from control_plane.core.config import Settings
from control_plane.livekit import LiveKit
from control_plane.models import VoiceSession, utcnow
from control_plane.tasks import cancel_and_wait
from control_plane.telephony import crud as phone_crud
from control_plane.telephony import service
from control_plane.telephony.models import PhoneCall

logger = logging.getLogger("stimm.control_plane")

WATCH_S = 1.0
DIAL_CANCELLED = "the dial was cancelled: the control plane placing it stopped"

Result = tuple[AttemptOutcome, str | None]
"""An attempt's outcome and, for a failed one, why."""


class CampaignRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        livekit: LiveKit,
        *,
        poll_s: float = 1.0,
        lease_s: float = 30.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.livekit = livekit
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.owner = f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._loop: asyncio.Task[None] | None = None
        self._calls: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def start(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run(), name="campaigns")

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        """Stop; calls under way are left to their sessions (and to the next runner's lease)."""
        await cancel_and_wait(self._loop, *self._calls.values())

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                logger.exception("campaigns: tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def tick(self) -> None:
        async with self.sessionmaker() as db:
            for campaign in await crud.running_campaigns(db):
                await self._tick_campaign(db, campaign)

    async def _tick_campaign(self, db: AsyncSession, campaign: Campaign) -> None:
        now = utcnow()
        until = now + timedelta(seconds=self.lease_s)
        for row in await crud.stale_rows(db, campaign.id, now):
            if row.id in self._calls:  # ours, its renewal late (a busy loop): still being called
                continue
            if await crud.lease_row(
                db, row, owner=self.owner, until=until, from_status="calling", now=now
            ):
                logger.warning(
                    "campaign %s: row %d was interrupted; resuming", campaign.id, row.position
                )
                self._spawn(row.id, self._resume(row.id))
        free = campaign.concurrency - await crud.calling_count(db, campaign.id)
        if free > 0:
            start, end = (
                time.fromisoformat(campaign.window_start),
                time.fromisoformat(campaign.window_end),
            )
            for row in await crud.due_rows(db, campaign.id, now, limit=free * 20):
                if free <= 0:
                    break
                if not in_window(now, row.timezone, start, end):
                    continue
                if await crud.lease_row(
                    db, row, owner=self.owner, until=until, from_status="pending", now=now
                ):
                    free -= 1
                    self._spawn(row.id, self._attempt(campaign.id, row.id))
        if await crud.unfinished_count(db, campaign.id) == 0:
            await crud.set_status(db, campaign, "completed")
            logger.info("campaign %s completed", campaign.id)

    def _spawn(self, row_id: str, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"campaign-row-{row_id}")  # type: ignore[arg-type]
        self._calls[row_id] = task
        task.add_done_callback(lambda _: self._calls.pop(row_id, None))

    async def _keep_lease(self, row_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 4)
            async with self.sessionmaker() as db:
                until = utcnow() + timedelta(seconds=self.lease_s)
                await crud.renew_lease(db, row_id, self.owner, until)

    async def _attempt(self, campaign_id: str, row_id: str) -> None:
        lease = asyncio.create_task(self._keep_lease(row_id))
        try:
            async with self.sessionmaker() as db:
                campaign = await crud.get_campaign(db, campaign_id)
                row = await db.get(CampaignRow, row_id)
                if campaign is None or row is None:
                    return
                attempt = CampaignAttempt(
                    row_id=row.id, number=row.attempts + 1, key=f"{row.id}:{row.attempts + 1}"
                )
                row.attempts += 1
                db.add(attempt)
                db.add(row)
                try:
                    await db.commit()
                except IntegrityError:  # this attempt was recorded already: watch it instead
                    await db.rollback()
                    await self._resume(row_id)
                    return
                outcome = await self._call(db, campaign, row, attempt)
            if outcome is None:
                await self._undo(row_id, attempt.id)
            else:
                await self._finish(row_id, attempt.id, outcome)
        except Exception:
            logger.exception("campaign %s: a row's call failed unexpectedly", campaign_id)
        finally:
            lease.cancel()

    async def _call(
        self, db: AsyncSession, campaign: Campaign, row: CampaignRow, attempt: CampaignAttempt
    ) -> Result | None:
        telephony = self.settings.telephony
        if not telephony.outbound_address:
            return "failed", "outbound calling is not configured (STIMM_SIP_OUTBOUND_ADDRESS)"

        async def bind(call: PhoneCall, voice_session: VoiceSession) -> None:
            attempt.call_id, attempt.session_id = call.id, voice_session.id
            db.add(attempt)
            await db.commit()

        try:
            _, voice_session = await service.place_call(
                db,
                self.settings,
                self.livekit,
                telephony,
                agent_id=campaign.agent_id,
                to=row.number,
                variables=row.variables,
                campaign_id=campaign.id,
                on_created=bind,
            )
        except service.CallNotPlaced as e:
            return _dial_outcome(e.call.outcome), str(e)
        return await self._watch(voice_session.id)

    async def _watch(self, session_id: str) -> Result | None:
        """Wait for a placed call to end; its outcome, or ``None`` for a dial its control plane
        took down with it (nobody could answer it: it is placed again)."""
        while True:
            async with self.sessionmaker() as db:
                found = await phone_crud.get_call_by_session(db, session_id)
            if found is None:
                return "failed", "the call record is gone"
            call, voice_session = found
            if call.outcome == "ringing":  # dialled by a control plane that stopped
                if not await self._settle_dial(call, voice_session):
                    return None
            elif (
                call.outcome in ("busy", "no-answer", "failed") and voice_session.started_at is None
            ):
                return _dial_outcome(call.outcome), call.failure_reason
            elif voice_session.status in ("completed", "failed", "abandoned"):
                if call.answered_by == "machine":
                    return "voicemail", None
                if voice_session.started_at is None:
                    return "failed", voice_session.failure_reason
                return "answered", None
            await asyncio.sleep(WATCH_S)

    async def _settle_dial(self, call: PhoneCall, voice_session: VoiceSession) -> bool:
        """Record how a dial whose control plane stopped ended; False once it is known that
        nobody answered it.

        livekit-server cancels a dial whose requester went away, so such a dial was either
        answered before (the agent's session started, or the callee's call is active) or
        cancelled, perhaps before it even rang: after the longest time the dial could have
        taken, it is recorded as failed and its room closed.
        """
        telephony = self.settings.telephony
        dial_over = utcnow() - call.created_at > timedelta(
            seconds=self.settings.pool.dispatch_timeout_s + telephony.ringing_timeout_s + 5.0
        )
        if voice_session.started_at is None and not dial_over:
            return True
        answered = voice_session.started_at is not None or await self.livekit.sip_call_active(
            voice_session.room, service.CALLEE_IDENTITY
        )
        reason = None if answered else DIAL_CANCELLED
        async with self.sessionmaker() as db:
            found = await phone_crud.get_call_by_session(db, voice_session.id)
            if found is None:
                return True
            call, voice_session = found
            call.outcome = "answered" if answered else "failed"
            call.failure_reason = reason
            db.add(call)
            if not answered and voice_session.status not in ("completed", "failed", "abandoned"):
                await control_plane_crud.mark_session_failed(db, voice_session, DIAL_CANCELLED)
            await db.commit()
        if not answered:
            await self.livekit.delete_room(voice_session.room)  # the agent waiting there leaves
        return answered

    async def _resume(self, row_id: str) -> None:
        """Take over a row whose control plane stopped: finish its last attempt; redial it only
        when nobody could have answered it."""
        lease = asyncio.create_task(self._keep_lease(row_id))
        try:
            async with self.sessionmaker() as db:
                attempt = await crud.last_attempt(db, row_id)
                row = await db.get(CampaignRow, row_id)
                if row is None:
                    return
                if attempt is None or (attempt.session_id is None and attempt.outcome is None):
                    # stopped before any call existed: nobody was dialled
                    await self._undo(row_id, attempt.id if attempt is not None else None)
                    return
                attempt_id, session_id, outcome = attempt.id, attempt.session_id, attempt.outcome
            result: Result | None = (outcome, None) if outcome is not None else None
            if result is None:
                assert session_id is not None
                result = await self._watch(session_id)
            if result is None:
                await self._undo(row_id, attempt_id)
            else:
                await self._finish(row_id, attempt_id, result)
        except Exception:
            logger.exception("campaigns: resuming row %s failed", row_id)
        finally:
            lease.cancel()

    async def _undo(self, row_id: str, attempt_id: str | None) -> None:
        """Forget an attempt nobody could answer (never dialled, or cancelled with its control
        plane): the row is called again at once, the attempt not counted."""
        async with self.sessionmaker() as db:
            row = await db.get(CampaignRow, row_id)
            if row is None:
                return
            attempt = await db.get(CampaignAttempt, attempt_id) if attempt_id else None
            if attempt is not None:
                await db.delete(attempt)
                row.attempts -= 1
            row.status, row.lease_owner, row.lease_expires_at = "pending", None, None
            db.add(row)
            await db.commit()
        logger.info("campaign row %d: its interrupted call is placed again", row.position)
        self.wake()

    async def _finish(self, row_id: str, attempt_id: str, result: Result) -> None:
        outcome, reason = result
        now = utcnow()
        async with self.sessionmaker() as db:
            attempt = await db.get(CampaignAttempt, attempt_id)
            row = await db.get(CampaignRow, row_id)
            if attempt is None or row is None:
                return
            campaign = await crud.get_campaign(db, row.campaign_id)
            attempt.outcome, attempt.ended_at = outcome, now
            row.outcome, row.failure_reason = outcome, reason
            row.lease_owner, row.lease_expires_at, row.updated_at = None, None, now
            if (
                campaign is not None
                and outcome in campaign.retry_on
                and row.attempts < campaign.max_attempts
            ):
                row.status = "cancelled" if campaign.status == "cancelled" else "pending"
                row.next_attempt_at = now + timedelta(seconds=campaign.retry_delay_s)
            else:
                row.status = "done"
            db.add(attempt)
            db.add(row)
            await db.commit()
            logger.info("campaign row %d: attempt %d %s", row.position, attempt.number, outcome)
        self.wake()


def _dial_outcome(outcome: str) -> AttemptOutcome:
    if outcome == "busy":
        return "busy"
    if outcome == "no-answer":
        return "no-answer"
    return "failed"
