"""The recordings store on an S3-compatible bucket: a real MinIO server (built pinned into
.cache/bin like the LiveKit binaries). Upload, ranged playback, deletion with the session, and a
bucket that cannot be reached answering 503 without keeping anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from control_plane import crud
from control_plane.recordings.config import RecordingSettings
from stimm.stack.minio import MinioServer, start_minio
from stimm.stack.process import free_port
from tests.integration.control_plane_env import (
    WORKER_HEADERS,
    app_client,
    make_settings,
)
from tests.integration.test_recordings import AGENT, STARTED, ended_session, tone
from tests.support.recording import write_ogg

pytestmark = pytest.mark.integration

BUCKET = "stimm-recordings"


@pytest.fixture(scope="module")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    root = tmp_path_factory.mktemp("minio")
    server = start_minio(root / "logs", root / "data")
    yield server
    server.process.stop()


def s3_settings(minio: MinioServer, **overrides: Any) -> RecordingSettings:
    values: dict[str, Any] = {
        "s3_bucket": BUCKET,
        "s3_endpoint_url": minio.endpoint_url,
        "s3_access_key_id": minio.access_key,
        "s3_secret_access_key": minio.secret_key,
        "s3_prefix": "calls/",
        **overrides,
    }
    return RecordingSettings(**values)


def bucket_keys(minio: MinioServer) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=minio.endpoint_url,
        aws_access_key_id=minio.access_key,
        aws_secret_access_key=minio.secret_key,
        region_name="us-east-1",
    )
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


async def test_recordings_live_in_the_bucket_and_leave_it_with_their_session(
    database_url: str, minio: MinioServer, tmp_path: Path
) -> None:
    async with app_client(make_settings(database_url, recordings=s3_settings(minio))) as (
        app,
        client,
    ):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        session_id = await ended_session(app, agent["id"])
        body = write_ogg(tmp_path / "call.ogg", tone(3.0, 440), tone(3.0, 880)).read_bytes()
        put = await client.put(
            f"/api/worker/sessions/{session_id}/recording",
            params={"started_at": STARTED},
            content=body,
            headers={**WORKER_HEADERS, "Content-Type": "audio/ogg"},
        )
        assert put.status_code == 204, put.text  # the bucket did not exist: it was created
        assert bucket_keys(minio) == [f"calls/{session_id}.ogg"]

        rec = (await client.get(f"/api/sessions/{session_id}/recording")).json()
        assert rec["duration_s"] == pytest.approx(3.0, abs=0.1)
        whole = await client.get(rec["url"], headers={"Authorization": ""})
        assert whole.status_code == 200 and whole.content == body
        part = await client.get(rec["url"], headers={"Authorization": "", "Range": "bytes=10-"})
        assert part.status_code == 206 and part.content == body[10:]

        assert (await client.delete(f"/api/sessions/{session_id}")).status_code == 204
        assert bucket_keys(minio) == []


async def test_an_unreachable_bucket_is_a_503_and_keeps_nothing(
    database_url: str, tmp_path: Path, minio: MinioServer
) -> None:
    dead = s3_settings(minio, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    async with app_client(make_settings(database_url, recordings=dead)) as (app, client):
        agent = (await client.post("/api/agents", json=AGENT)).json()
        session_id = await ended_session(app, agent["id"])
        body = write_ogg(tmp_path / "call.ogg", tone(1.0, 440), tone(1.0, 880)).read_bytes()
        put = await client.put(
            f"/api/worker/sessions/{session_id}/recording",
            params={"started_at": STARTED},
            content=body,
            headers={**WORKER_HEADERS, "Content-Type": "audio/ogg"},
        )
        assert put.status_code == 503, put.text
        assert "recordings store is unavailable" in put.json()["detail"]
        async with app.state.sessionmaker() as db:
            assert await app.state.recordings.get(db, session_id) is None
            assert await crud.get_session(db, session_id) is not None
