"""Call recordings in the control plane: a worker uploads one, the console gets a short-lived
signed URL that plays it (byte ranges for seeking), it is deleted with its session and by the
retention sweep, and what is not a recording is refused. Real PostgreSQL, a real folder."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi import FastAPI

from control_plane import crud
from control_plane.models import utcnow
from control_plane.recordings.config import RecordingSettings
from control_plane.recordings.logging import hide_signed_urls
from control_plane.recordings.service import Recordings
from tests.integration.control_plane_env import (
    WORKER_HEADERS,
    app_client,
    make_settings,
)
from tests.support.recording import write_ogg

pytestmark = pytest.mark.integration

AGENT: dict[str, Any] = {
    "name": "Recorded",
    "instructions": "You answer.",
    "llm": {"provider": "openai"},
    "recording": {"enabled": True, "retention_days": 7},
}
STARTED = "2026-12-01T10:00:00+00:00"


def tone(seconds: float, hz: float) -> np.ndarray[Any, np.dtype[np.int16]]:
    t = np.arange(int(48_000 * seconds)) / 48_000
    return (np.sin(2 * np.pi * hz * t) * 8_000).astype(np.int16)


async def ended_session(app: FastAPI, agent_id: str) -> str:
    async with app.state.sessionmaker() as db:
        voice_session = await crud.create_session(
            db, agent_id=agent_id, channel="web", participant_identity=None
        )
        voice_session.status = "completed"
        db.add(voice_session)
        await db.commit()
        return voice_session.id


async def test_upload_play_seek_and_delete_with_the_session(
    database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    recording_settings = RecordingSettings(recordings_dir=folder, url_ttl_s=60)
    async with app_client(make_settings(database_url, recordings=recording_settings)) as (
        app,
        client,
    ):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        assert agent["recording"] == {"enabled": True, "retention_days": 7}
        session_id = await ended_session(app, agent["id"])
        ogg = write_ogg(tmp_path / "call.ogg", tone(4.0, 440), tone(4.0, 880))
        body = ogg.read_bytes()

        put = await client.put(
            f"/api/worker/sessions/{session_id}/recording",
            params={"started_at": STARTED},
            content=body,
            headers={**WORKER_HEADERS, "Content-Type": "audio/ogg"},
        )
        assert put.status_code == 204, put.text
        assert [p.name for p in folder.iterdir()] == [f"{session_id}.ogg"]

        # an API key is not a worker token, and the details need an API key
        refused = await client.put(
            f"/api/worker/sessions/{session_id}/recording",
            params={"started_at": STARTED},
            content=body,
            headers={"Content-Type": "audio/ogg"},
        )
        assert refused.status_code == 401
        details = await client.get(
            f"/api/sessions/{session_id}/recording", headers={"Authorization": ""}
        )
        assert details.status_code == 401

        rec = (await client.get(f"/api/sessions/{session_id}/recording")).json()
        assert rec["duration_s"] == pytest.approx(4.0, abs=0.1)
        assert rec["channels"] == ["caller", "agent"]
        assert rec["started_at"].startswith("2026-12-01T10:00:00")
        assert rec["size_bytes"] == len(body)

        # the signed URL plays without an API key, whole or by ranges
        anonymous = {"Authorization": ""}
        whole = await client.get(rec["url"], headers=anonymous)
        assert whole.status_code == 200, whole.text
        assert whole.headers["content-type"] == "audio/ogg"
        assert whole.content == body
        part = await client.get(rec["url"], headers={**anonymous, "Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
        assert part.content == body[100:200]
        tail = await client.get(rec["url"], headers={**anonymous, "Range": "bytes=-50"})
        assert tail.content == body[-50:]
        beyond = await client.get(rec["url"], headers={**anonymous, "Range": f"bytes={len(body)}-"})
        assert beyond.status_code == 416

        # a URL for another session, a forged or an expired signature opens nothing
        query = parse_qs(urlsplit(rec["url"]).query)
        other = await ended_session(app, agent["id"])
        forged = await client.get(
            f"/api/recordings/{other}",
            params={"expires": query["expires"][0], "signature": query["signature"][0]},
        )
        assert forged.status_code == 403
        signer = app.state.recordings.signer
        old_query, _ = signer.sign(session_id, now=0)
        expired = await client.get(f"/api/recordings/{session_id}?{old_query}")
        assert expired.status_code == 403
        assert "expired" in expired.json()["detail"]

        # deleting the session deletes its recording; a running session cannot be deleted
        deleted = await client.delete(f"/api/sessions/{session_id}")
        assert deleted.status_code == 204
        assert list(folder.iterdir()) == []
        assert (await client.get(f"/api/sessions/{session_id}")).status_code == 404
        assert (await client.get(rec["url"])).status_code == 404
        async with app.state.sessionmaker() as db:
            running = await crud.create_session(
                db, agent_id=agent["id"], channel="web", participant_identity=None
            )
        conflict = await client.delete(f"/api/sessions/{running.id}")
        assert conflict.status_code == 409
        assert "still created" in conflict.json()["detail"]


async def test_what_is_not_a_recording_is_refused(database_url: str, tmp_path: Path) -> None:
    recording_settings = RecordingSettings(recordings_dir=tmp_path, max_bytes=64 * 1024)
    async with app_client(make_settings(database_url, recordings=recording_settings)) as (
        app,
        client,
    ):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        quiet = (
            await client.post("/api/agents", json={**AGENT, "recording": {"enabled": False}})
        ).json()
        session_id = await ended_session(app, agent["id"])
        url = f"/api/worker/sessions/{session_id}/recording"
        ogg = write_ogg(tmp_path / "call.ogg", tone(1.0, 440), tone(1.0, 880)).read_bytes()

        async def put(content: bytes, content_type: str = "audio/ogg", **params: str) -> Any:
            return await client.put(
                url,
                params={"started_at": STARTED, **params},
                content=content,
                headers={**WORKER_HEADERS, "Content-Type": content_type},
            )

        not_ogg = await put(b"OggS" + b"\x00" * 2_000)
        assert not_ogg.status_code == 422
        assert "Ogg/Opus" in not_ogg.json()["detail"]
        assert (await put(ogg, "application/octet-stream")).status_code == 415
        too_big = await put(b"\x00" * (65 * 1024))
        assert too_big.status_code == 413
        assert "larger than the limit" in too_big.json()["detail"]
        naive = await put(ogg, started_at="2026-12-01T10:00:00")
        assert naive.status_code == 422
        unknown = await client.put(
            "/api/worker/sessions/nope/recording",
            params={"started_at": STARTED},
            content=ogg,
            headers={**WORKER_HEADERS, "Content-Type": "audio/ogg"},
        )
        assert unknown.status_code == 404
        not_recorded = await ended_session(app, quiet["id"])
        off = await client.put(
            f"/api/worker/sessions/{not_recorded}/recording",
            params={"started_at": STARTED},
            content=ogg,
            headers={**WORKER_HEADERS, "Content-Type": "audio/ogg"},
        )
        assert off.status_code == 409
        assert "does not record" in off.json()["detail"]
        # nothing refused was kept, not even a temporary file
        assert [p.name for p in tmp_path.iterdir()] == ["call.ogg"]
        none = await client.get(f"/api/sessions/{session_id}/recording")
        assert none.status_code == 404
        assert "has no recording" in none.json()["detail"]

        bad_policy = await client.post(
            "/api/agents", json={**AGENT, "recording": {"enabled": True, "retention_days": 0}}
        )
        assert bad_policy.status_code == 422
        assert bad_policy.json()["detail"][0]["loc"][-2:] == ["recording", "retention_days"]


async def test_retention_sweep_deletes_expired_recordings_only(
    database_url: str, tmp_path: Path
) -> None:
    recording_settings = RecordingSettings(recordings_dir=tmp_path / "store")
    async with app_client(make_settings(database_url, recordings=recording_settings)) as (
        app,
        client,
    ):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        kept, expiring = (
            await ended_session(app, agent["id"]),
            await ended_session(app, agent["id"]),
        )
        ogg = write_ogg(tmp_path / "call.ogg", tone(1.0, 440), tone(1.0, 880)).read_bytes()
        for session_id in (kept, expiring):
            resp = await client.put(
                f"/api/worker/sessions/{session_id}/recording",
                params={"started_at": STARTED},
                content=ogg,
                headers={**WORKER_HEADERS, "Content-Type": "audio/ogg"},
            )
            assert resp.status_code == 204, resp.text
        recordings: Recordings = app.state.recordings
        async with app.state.sessionmaker() as db:
            row = await recordings.get(db, expiring)
            assert row is not None
            row.expires_at = utcnow() - timedelta(minutes=1)
            db.add(row)
            await db.commit()
            assert await recordings.sweep_once(db) == 1
        assert [p.name for p in (tmp_path / "store").iterdir()] == [f"{kept}.ogg"]
        assert (await client.get(f"/api/sessions/{expiring}/recording")).status_code == 404
        assert (await client.get(f"/api/sessions/{kept}/recording")).status_code == 200
        # the session and its transcript stay: retention is about the audio
        assert (await client.get(f"/api/sessions/{expiring}")).status_code == 200


def test_signed_urls_stay_out_of_the_access_log(caplog: pytest.LogCaptureFixture) -> None:
    hide_signed_urls()
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/api/recordings/abc?expires=1&signature=deadbeef",
            "1.1",
            200,
        )
    assert "/api/recordings/abc" in caplog.text
    assert "deadbeef" not in caplog.text
