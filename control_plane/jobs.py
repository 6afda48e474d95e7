"""A job queue kept in a database table: leases, retries with backoff, survives restarts.

A table becomes a queue by deriving its model from ``QueuedJob`` (status, attempts, when the
next attempt is due, until when the running attempt holds it). Every control-plane replica
runs a ``JobQueue`` over it; a claim is one conditional UPDATE, so a job runs once at a time,
and a job whose lease ran out (its control plane was killed mid-attempt) is taken up again.

The knowledge-base ingestion queue (``control_plane/knowledge/queue.py``) predates this one and
keeps its own loop: it takes knowledge bases in turn, beats a heartbeat and can be cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import AwareDatetime
from sqlalchemy import String, Text, and_, inspect, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.models import utcnow
from control_plane.tasks import cancel_and_wait

logger = logging.getLogger("stimm.control_plane")

JobStatus = Literal["pending", "running", "succeeded", "failed"]


class QueuedJob(SQLModel):
    """The columns that make a table a queue (its ``id`` is the table's own)."""

    status: str = Field(default="pending", sa_type=String(16), index=True)
    attempts: int = 0
    next_attempt_at: AwareDatetime = Field(default_factory=utcnow)
    lease_until: AwareDatetime | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    """Why the last attempt failed."""


JobT = TypeVar("JobT", bound=QueuedJob)
JobT_contra = TypeVar("JobT_contra", bound=QueuedJob, contravariant=True)


class Retry(Exception):
    """This attempt failed in a way another may not: try again later (or fail for good after
    the last attempt). ``values`` are set on the row with the failure."""

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


class Fail(Exception):
    """This job cannot succeed: fail it now, with the reason."""

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


Finish = Callable[[AsyncSession, Any], Awaitable[None]]
"""Called with the job's row in the transaction that marks it done: store the result, queue
what follows (so a crash cannot keep the one without the other)."""


class JobHandler(Protocol[JobT_contra]):
    async def run(self, job: JobT_contra) -> Finish:
        """Do the work (outside any transaction); raise ``Retry`` or ``Fail`` when it fails."""
        ...

    async def failed(self, db: AsyncSession, job: JobT_contra) -> None:
        """Called in the transaction that fails the job for good."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_s: float = 5.0
    """Delay before the second attempt; it doubles after each failure, up to ``max_s``."""
    max_s: float = 3_600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.max_s, self.base_s * 2 ** max(0, attempts - 1)))


class JobQueue(Generic[JobT]):
    """Runs the due jobs of one table, up to ``concurrency`` at once."""

    def __init__(
        self,
        name: str,
        model: type[JobT],
        handler: JobHandler[JobT],
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retry: RetryPolicy,
        lease_s: float,
        poll_s: float = 5.0,
        concurrency: int = 4,
    ) -> None:
        self.name = name
        self.model = model
        self._id: Any = getattr(model, inspect(model).primary_key[0].key)
        self.handler = handler
        self.sessionmaker = sessionmaker
        self.retry = retry
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def _key(self, job: JobT) -> Any:
        return getattr(job, self._id.key)

    def wake(self) -> None:
        """Start the queue if it is not running, and have it look for due jobs now."""
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run(), name=f"queue-{self.name}")
        self._wake.set()

    async def aclose(self) -> None:
        """Stop taking jobs and abandon the running ones (their leases run out; another
        replica, or this one restarted, takes them up again)."""
        await cancel_and_wait(self._loop, *self._running)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                claimed = await self._claim_due()
            except Exception:
                logger.exception("%s queue: could not read the queue", self.name)
                claimed = []
            for job in claimed:
                task = asyncio.create_task(self._attempt(job), name=f"{self.name}-{self._key(job)}")
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), await self._idle_wait())

    def _due(self, now: datetime) -> Any:
        m = self.model
        return or_(
            and_(col(m.status) == "pending", col(m.next_attempt_at) <= now),
            and_(col(m.status) == "running", col(m.lease_until) < now),
        )

    async def _claim_due(self) -> list[JobT]:
        """Claim as many due jobs as there are free slots, oldest due first."""
        claimed: list[JobT] = []
        async with self.sessionmaker() as db:
            while not self._slots.locked():
                now = utcnow()
                m = self.model
                ids = (
                    await db.exec(
                        select(self._id)
                        .where(self._due(now))
                        .order_by(col(m.next_attempt_at))
                        .limit(8)
                    )
                ).all()
                if not ids:
                    break
                progress = False
                for job_id in ids:
                    if self._slots.locked():
                        break
                    result = await db.exec(
                        update(m)
                        .where(self._id == job_id, self._due(now))
                        .values(
                            status="running",
                            attempts=col(m.attempts) + 1,
                            lease_until=now + timedelta(seconds=self.lease_s),
                        )
                    )
                    await db.commit()
                    if result.rowcount == 1:  # another replica may have won it
                        job = await db.get(m, job_id, populate_existing=True)
                        if job is not None:
                            await self._slots.acquire()
                            claimed.append(job)
                            progress = True
                if not progress:
                    break
        return claimed

    async def _idle_wait(self) -> float:
        """Seconds until the next pending job is due, at most ``poll_s``."""
        m = self.model
        try:
            async with self.sessionmaker() as db:
                due = (
                    await db.exec(
                        select(m.next_attempt_at)
                        .where(col(m.status) == "pending")
                        .order_by(col(m.next_attempt_at))
                        .limit(1)
                    )
                ).first()
        except Exception:
            return self.poll_s
        if due is None:
            return self.poll_s
        if due.tzinfo is None:  # SQLite hands back naive UTC
            due = due.replace(tzinfo=utcnow().tzinfo)
        return max(0.05, min(self.poll_s, (due - utcnow()).total_seconds()))

    async def _attempt(self, job: JobT) -> None:
        try:
            try:
                finish = await self.handler.run(job)
            except Retry as e:
                await self._settle(
                    job, e.reason, e.values, final=job.attempts >= self.retry.max_attempts
                )
            except Fail as e:
                await self._settle(job, e.reason, e.values, final=True)
            except Exception as e:
                logger.exception(
                    "%s job %s: attempt %d crashed", self.name, self._key(job), job.attempts
                )
                reason = f"internal error: {type(e).__name__}"
                await self._settle(job, reason, {}, final=job.attempts >= self.retry.max_attempts)
            else:
                await self._succeed(job, finish)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s job %s: could not record the attempt", self.name, self._key(job))
        finally:
            self._slots.release()
            self._wake.set()

    async def _locked(self, db: AsyncSession, job: JobT) -> JobT | None:
        """The job's row, locked, if this attempt still holds it."""
        m = self.model
        row = (await db.exec(select(m).where(self._id == self._key(job)).with_for_update())).first()
        if row is None or row.status != "running" or row.attempts != job.attempts:
            logger.warning(
                "%s job %s: its lease ran out during attempt %d",
                self.name,
                self._key(job),
                job.attempts,
            )
            return None
        return row

    async def _succeed(self, job: JobT, finish: Finish) -> None:
        async with self.sessionmaker() as db:
            row = await self._locked(db, job)
            if row is None:
                return
            await finish(db, row)
            row.status = "succeeded"
            row.lease_until = None
            row.last_error = None
            db.add(row)
            await db.commit()

    async def _settle(self, job: JobT, reason: str, values: dict[str, Any], *, final: bool) -> None:
        async with self.sessionmaker() as db:
            row = await self._locked(db, job)
            if row is None:
                return
            row.sqlmodel_update(values)
            row.last_error = reason[:2_000]
            row.lease_until = None
            if final:
                row.status = "failed"
                await self.handler.failed(db, row)
                logger.warning(
                    "%s job %s failed after %d attempt(s)", self.name, self._key(job), row.attempts
                )
            else:
                row.status = "pending"
                row.next_attempt_at = utcnow() + timedelta(seconds=self.retry.delay(row.attempts))
            db.add(row)
            await db.commit()
