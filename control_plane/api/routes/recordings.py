"""A session's recording: its details and signed URL (API key), and the audio behind that URL.

The audio route takes no API key (an ``<audio>`` element cannot send one): the URL's expiry and
HMAC signature are its credential. Its query string is kept out of the access log.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from control_plane import crud
from control_plane.api.deps import DbDep, RecordingsDep
from control_plane.api.routes.sessions import session_not_found
from control_plane.errors import RecordingStoreError
from control_plane.recordings.logging import AUDIO_PATH
from control_plane.recordings.models import Recording, RecordingPublic
from control_plane.recordings.store import CONTENT_TYPE

router = APIRouter(prefix="/sessions", tags=["recordings"])
audio_router = APIRouter(prefix="/api/recordings", tags=["recordings"])


def recording_not_found(session_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND, detail=f"Session {session_id} has no recording"
    )


def store_unavailable(e: RecordingStoreError) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=f"The recordings store is unavailable ({e}); try again in a moment",
        headers={"Retry-After": "5"},
    )


@router.get("/{session_id}/recording", responses={404: {"description": "No such recording"}})
async def get_recording(db: DbDep, recordings: RecordingsDep, session_id: str) -> RecordingPublic:
    """The session's recording, with a short-lived URL that plays it."""
    if await crud.get_session(db, session_id) is None:
        raise session_not_found(session_id)
    row = await recordings.get(db, session_id)
    if row is None:
        raise recording_not_found(session_id)
    query, expires = recordings.signer.sign(session_id)
    return RecordingPublic(
        session_id=row.session_id,
        duration_s=row.duration_s,
        size_bytes=row.size_bytes,
        started_at=row.started_at,
        expires_at=row.expires_at,
        url=f"{AUDIO_PATH}{session_id}?{query}",
        url_expires_at=datetime.fromtimestamp(expires, tz=UTC),
    )


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single ``Range`` header; ``None`` for the whole file.

    Raises 416 for a range outside the file.
    """
    if not header or not (m := _RANGE.match(header.strip())) or m.group(0) == "bytes=-":
        return None
    first, last = m.groups()
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:  # a suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if start >= size or start > end:
        raise HTTPException(
            status_code=status.HTTP_416_RANGE_NOT_SATISFIABLE,
            detail=f"The recording has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


@audio_router.get(
    "/{session_id}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {CONTENT_TYPE: {}}, "description": "The recording (Ogg/Opus, stereo)"},
        206: {"description": "The byte range asked for"},
        403: {"description": "The link is not valid or has expired"},
    },
)
async def play_recording(
    db: DbDep,
    recordings: RecordingsDep,
    session_id: str,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(max_length=128)],
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> StreamingResponse:
    """The audio of a recording, by the signed URL ``GET .../recording`` gave (byte ranges)."""
    if problem := recordings.signer.check(session_id, expires, signature):
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=problem)
    row: Recording | None = await recordings.get(db, session_id)
    if row is None:
        raise recording_not_found(session_id)
    size = row.size_bytes
    span = byte_range(range_header, size)
    start, end = span if span is not None else (0, size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "Cache-Control": "private, no-store",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    try:
        chunks = recordings.store.read(row.key, start, end)
        first = await anext(chunks, b"")  # a store failure is a 503, not a cut-off stream
    except RecordingStoreError as e:
        raise store_unavailable(e) from e

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(
        body(),
        status_code=status.HTTP_206_PARTIAL_CONTENT if span else status.HTTP_200_OK,
        media_type=CONTENT_TYPE,
        headers=headers,
    )
