"""Recordings as the routes use them: store an upload, sign its URL, serve its bytes, delete it
with its session, and the retention sweep."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.errors import RecordingStoreError
from control_plane.models import utcnow
from control_plane.recordings.audio import NotARecording, probe
from control_plane.recordings.config import RecordingSettings
from control_plane.recordings.models import Recording
from control_plane.recordings.signing import UrlSigner
from control_plane.recordings.store import LocalStore, RecordingStore, create_store
from control_plane.tasks import cancel_and_wait

logger = logging.getLogger("stimm.control_plane")


class UploadTooLarge(Exception):
    pass


class Recordings:
    """The recordings store with its settings, URL signer and retention sweep."""

    def __init__(
        self,
        settings: RecordingSettings,
        store: RecordingStore,
        signer: UrlSigner,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self._sessionmaker = sessionmaker
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: RecordingSettings,
        *,
        database_url: str,
        secret_key: str,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> Recordings:
        store = create_store(settings, database_url)
        return cls(settings, store, UrlSigner(secret_key, settings.url_ttl_s), sessionmaker)

    # --- upload -------------------------------------------------------------------------------

    async def receive(self, chunks: AsyncIterator[bytes]) -> Path:
        """Write an upload to a private temporary file, refusing it past ``max_bytes``."""
        folder = self.store.folder if isinstance(self.store, LocalStore) else None
        if folder is not None:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=".ogg", dir=folder)
        path = Path(name)
        size = 0
        try:
            with open(fd, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.settings.max_bytes:
                        raise UploadTooLarge
                    await asyncio.to_thread(f.write, chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    async def save(
        self,
        db: AsyncSession,
        session_id: str,
        path: Path,
        *,
        started_at: datetime,
        retention_days: int,
    ) -> Recording:
        """Keep the uploaded file as the session's recording (replacing an earlier one).

        Raises ``NotARecording`` for anything but an Ogg/Opus file.
        """
        try:
            info = await asyncio.to_thread(probe, path)
            size = path.stat().st_size
            key = f"{session_id}.ogg"
            await self.store.put(key, path)
        finally:
            path.unlink(missing_ok=True)
        now = utcnow()
        row = await db.get(Recording, session_id)
        if row is None:
            row = Recording(
                session_id=session_id,
                key=key,
                size_bytes=size,
                duration_s=info.duration_s,
                started_at=started_at,
                expires_at=now + timedelta(days=retention_days),
            )
        else:
            row.size_bytes, row.duration_s, row.started_at = size, info.duration_s, started_at
            row.created_at, row.expires_at = now, now + timedelta(days=retention_days)
        db.add(row)
        await db.commit()
        await db.refresh(row)
        return row

    # --- reading and deleting -----------------------------------------------------------------

    async def get(self, db: AsyncSession, session_id: str) -> Recording | None:
        return await db.get(Recording, session_id)

    async def delete(self, db: AsyncSession, row: Recording) -> None:
        """Delete the file, then its row (a file the row outlived would never be found)."""
        await self.store.delete(row.key)
        await db.delete(row)
        await db.commit()

    async def sweep_once(self, db: AsyncSession, now: datetime | None = None) -> int:
        """Delete every recording past its retention; returns how many."""
        rows = await db.exec(
            select(Recording).where(col(Recording.expires_at) <= (now or utcnow())).limit(500)
        )
        deleted = 0
        for row in rows.all():
            try:
                await self.delete(db, row)
            except RecordingStoreError as e:
                logger.warning("recording of session %s not deleted yet: %s", row.session_id, e)
                continue
            deleted += 1
        if deleted:
            logger.info("retention sweep deleted %d recording(s)", deleted)
        return deleted

    # --- the sweep task -----------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="stimm_recordings_sweep")

    async def aclose(self) -> None:
        await cancel_and_wait(self._sweeper)

    async def _sweep(self) -> None:
        while True:
            try:
                async with self._sessionmaker() as db:
                    await self.sweep_once(db)
            except Exception:  # keep sweeping; one bad round must not end retention
                logger.exception("recordings retention sweep failed")
            await asyncio.sleep(self.settings.sweep_interval_s)


__all__ = ["NotARecording", "Recordings", "UploadTooLarge"]
