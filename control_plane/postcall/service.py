"""Post-call work as the app runs it (``app.state.postcall``): the analysis queue and the webhook
delivery queue, fed when the worker reports a session's events.

When a session ends, an agent with analysis on gets a ``session_analysis`` job; its result (or
its failure) then queues ``analysis.completed`` and ``session.ended`` in the same transaction.
Without analysis, ``session.ended`` is queued at once. Deliveries are posted signed
(``stimm.webhook_signature``) through the egress policy and retried with backoff; the queues
live in the database, so a restart loses nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import credentials
from control_plane.agent_secrets import inline_secrets, secret_refs
from control_plane.jobs import Fail, Finish, JobQueue, Retry
from control_plane.models import Agent, Turn, VoiceSession, utcnow
from control_plane.postcall import analysis as llm_analysis
from control_plane.postcall import crud
from control_plane.postcall.config import PostCallSettings
from control_plane.postcall.models import SessionAnalysis, WebhookDelivery, WebhookEndpoint
from control_plane.postcall.pii import redact, redact_values
from control_plane.security import SecretBox
from control_plane.validation import secret_names
from stimm.egress import EgressPolicy, EgressRefused, EgressTransport
from stimm.webhook_signature import (
    DELIVERY_ID_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    sign,
)

logger = logging.getLogger("stimm.control_plane")

ENDED = ("completed", "failed", "abandoned")
ANALYSED = ("completed", "failed")
"""Sessions worth analysing: someone talked (an abandoned one has no caller)."""
USER_AGENT = "Stimm-Webhooks/1"


class PostCall:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
        settings: PostCallSettings | None = None,
        policy: EgressPolicy | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.box = box
        self.settings = settings or PostCallSettings()
        self.http = httpx.AsyncClient(
            transport=EgressTransport(policy or EgressPolicy.from_env()), follow_redirects=False
        )
        self.analyses = JobQueue(
            "analysis",
            SessionAnalysis,
            _Analyser(self),
            sessionmaker,
            retry=self.settings.analysis_retry(),
            lease_s=self.settings.analysis_timeout_s * 2 + 30,
            concurrency=2,
        )
        self.deliveries = JobQueue(
            "webhooks",
            WebhookDelivery,
            _Deliverer(self),
            sessionmaker,
            retry=self.settings.webhook_retry(),
            lease_s=self.settings.webhook_timeout_s + 30,
            concurrency=8,
        )

    def start(self) -> None:
        """Run what is due, including what a stopped control plane left queued."""
        self.analyses.wake()
        self.deliveries.wake()

    async def aclose(self) -> None:
        await self.analyses.aclose()
        await self.deliveries.aclose()
        await self.http.aclose()

    async def session_reported(self, db: AsyncSession, voice_session: VoiceSession) -> None:
        """Queue what the session's current status calls for. Safe to call again for the same
        status (the worker retries its reports): each event is queued once."""
        if voice_session.status == "active":
            data = await crud.session_data(db, voice_session)
            await self._commit_once(
                db, lambda: crud.add_deliveries(db, "session.started", voice_session.id, data)
            )
        elif voice_session.status in ENDED:
            agent = await db.get(Agent, voice_session.agent_id)
            config = agent.to_config() if agent is not None else None
            has_turns = (
                await db.exec(
                    select(Turn.id).where(col(Turn.session_id) == voice_session.id).limit(1)
                )
            ).first() is not None
            if (
                config
                and config.analysis.enabled
                and voice_session.status in ANALYSED
                and has_turns
            ):
                if await crud.get_analysis(db, voice_session.id) is None:
                    db.add(SessionAnalysis(session_id=voice_session.id))
                    await self._commit_once(db, None)
                self.analyses.wake()
                return
            data = await crud.session_ended_data(db, voice_session)
            await self._commit_once(
                db, lambda: crud.add_deliveries(db, "session.ended", voice_session.id, data)
            )
        self.deliveries.wake()

    @staticmethod
    async def _commit_once(db: AsyncSession, add: Any) -> None:
        # Two reports of the same status at once may both try to queue: the unique keys let one.
        try:
            if add is not None:
                await add()
            await db.commit()
        except IntegrityError:
            await db.rollback()

    async def endpoint_secret(self, db: AsyncSession, endpoint: WebhookEndpoint) -> str | None:
        values = await credentials.decrypt_secrets(db, self.box, {endpoint.secret_name})
        return values.get(endpoint.secret_name)


class _Analyser:
    def __init__(self, postcall: PostCall) -> None:
        self.postcall = postcall

    async def run(self, job: SessionAnalysis) -> Finish:
        p = self.postcall
        async with p.sessionmaker() as db:
            voice_session = await db.get(VoiceSession, job.session_id)
            agent = await db.get(Agent, voice_session.agent_id) if voice_session else None
            if voice_session is None or agent is None:
                raise Fail("The session or its agent no longer exists")
            config = agent.to_config()
            needed = secret_names(config) | set(secret_refs(config))
            values = await credentials.decrypt_secrets(db, p.box, needed)
            turns = (
                await db.exec(
                    select(Turn)
                    .where(col(Turn.session_id) == voice_session.id)
                    .order_by(col(Turn.seq))
                )
            ).all()
        try:
            config = inline_secrets(config, values)
        except KeyError as e:
            raise Fail(f"The agent refers to secret {e.args[0]}, which is not set") from e
        targets = llm_analysis.endpoints(config, values, p.settings.local_llm_url)
        result = await llm_analysis.analyse(
            p.http,
            targets,
            config.analysis,
            [(t.role, t.text) for t in turns],
            timeout_s=p.settings.analysis_timeout_s,
        )
        summary, data = result.summary, result.data
        if config.redact_pii:
            summary = redact(summary) if summary else summary
            data = redact_values(data)

        async def finish(db: AsyncSession, row: SessionAnalysis) -> None:
            row.summary = summary
            row.data = data
            row.completed_at = utcnow()
            row.status = "succeeded"  # as the queue marks it: the events carry it
            row.last_error = None
            db.add(row)
            await db.flush()
            await _queue_ended(db, row, analysed=True)

        logger.info("session %s analysed", job.session_id)
        return finish

    async def failed(self, db: AsyncSession, job: SessionAnalysis) -> None:
        job.completed_at = utcnow()
        db.add(job)
        await db.flush()
        logger.warning("session %s: analysis failed: %s", job.session_id, job.last_error)
        await _queue_ended(db, job, analysed=False)


async def _queue_ended(db: AsyncSession, job: SessionAnalysis, *, analysed: bool) -> None:
    voice_session = await db.get(VoiceSession, job.session_id)
    if voice_session is None:
        return
    data = await crud.session_ended_data(db, voice_session)
    if analysed:
        completed = {
            "session_id": voice_session.id,
            "agent_id": voice_session.agent_id,
            "analysis": data["analysis"],
        }
        await crud.add_deliveries(db, "analysis.completed", voice_session.id, completed)
    await crud.add_deliveries(db, "session.ended", voice_session.id, data)


class _Deliverer:
    def __init__(self, postcall: PostCall) -> None:
        self.postcall = postcall

    async def run(self, job: WebhookDelivery) -> Finish:
        p = self.postcall
        async with p.sessionmaker() as db:
            endpoint = await crud.get_endpoint(db, job.endpoint_id)
            if endpoint is None:
                raise Fail("The endpoint was deleted")
            if not endpoint.enabled:
                raise Fail("The endpoint is disabled")
            secret = await p.endpoint_secret(db, endpoint)
        if secret is None:
            raise Fail("The endpoint's signing secret is not set")
        body = job.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, body),
            EVENT_ID_HEADER: job.event_id,
            EVENT_TYPE_HEADER: job.event,
            DELIVERY_ID_HEADER: job.id,
        }
        try:
            response = await p.http.post(
                endpoint.url, content=body, headers=headers, timeout=p.settings.webhook_timeout_s
            )
        except EgressRefused as e:
            raise Fail(f"Refused by the egress policy: {e}") from e
        except httpx.HTTPError as e:
            raise Retry(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from e
        code = response.status_code
        if not 200 <= code < 300:
            raise Retry(f"The endpoint answered HTTP {code}", last_status_code=code)

        async def finish(db: AsyncSession, row: WebhookDelivery) -> None:
            row.last_status_code = code
            row.delivered_at = utcnow()

        logger.info("webhook %s (%s) delivered on attempt %d", job.id, job.event, job.attempts)
        return finish

    async def failed(self, db: AsyncSession, job: WebhookDelivery) -> None:
        logger.warning("webhook %s (%s) failed: %s", job.id, job.event, job.last_error)
