"""The request edge (control_plane/api/request_guard.py) against the real app on PostgreSQL:
deeply nested JSON, NUL characters under every JSON content type, and bodies over the size
limits, each refused with a short JSON error before the body is read whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute

from control_plane.core.config import DEFAULT_MAX_JSON_BODY_BYTES
from control_plane.knowledge.config import DEFAULT_MAX_UPLOAD_BYTES

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
CHUNK = 64 * 1024
SHORT = 300  # bytes: an error a client can show, not a traceback
AGENT = {
    "name": "Receptionist",
    "instructions": "You answer the phone for a dental practice.",
    "llm": {"provider": "openai", "model": "gpt-4o-mini"},
}


@pytest_asyncio.fixture
async def anonymous(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> AsyncIterator[httpx.AsyncClient]:
    """No API key."""
    transport = httpx.ASGITransport(app=app_and_client[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://control-plane") as client:
        yield client


class Streamed:
    """A request body produced chunk by chunk, counting how much the server pulled."""

    def __init__(self, head: bytes, filler: bytes, total: int, tail: bytes = b"") -> None:
        self.head, self.filler, self.total, self.tail = head, filler, total, tail
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = [self.head]
        chunks += [self.filler] * ((self.total - len(self.head) - len(self.tail)) // CHUNK)
        for chunk in [*chunks, self.tail]:
            self.pulled += len(chunk)
            yield chunk


def messages(response: httpx.Response) -> list[str]:
    detail = response.json()["detail"]
    return [e["msg"] for e in detail] if isinstance(detail, list) else [detail]


# --- finding 3: nesting -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/api/agents"])
@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", None])
async def test_deeply_nested_json_gets_a_short_422_before_the_key_is_checked(
    anonymous: httpx.AsyncClient, path: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await anonymous.post(path, content=b"[" * 500 + b"]" * 500, headers=headers)
    assert response.status_code == 422
    assert len(response.content) < SHORT
    assert messages(response) == ["JSON nested deeper than 64 levels is not allowed"]


async def test_nesting_up_to_the_limit_reaches_the_api(anonymous: httpx.AsyncClient) -> None:
    # Brackets inside strings nest nothing.
    body = {"name": "[[[[{{{{" * 100, "options": json.loads("[" * 63 + "]" * 63)}
    response = await anonymous.post("/api/agents", json=body)
    assert response.status_code == 401


# --- finding 5: NUL under every JSON content type -----------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "Application/JSON",
        "APPLICATION/JSON; charset=UTF-8",
        "application/merge-patch+json",
        "application/vnd.stimm+JSON",
    ],
)
async def test_nul_in_a_json_body_is_422_whatever_the_json_content_type(
    client: httpx.AsyncClient, content_type: str
) -> None:
    body = json.dumps({**AGENT, "name": "Recep\x00tionist"})
    response = await client.post(
        "/api/agents", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422
    assert messages(response) == ["NUL characters are not allowed"]
    listed = await client.get("/api/agents")
    assert all("\x00" not in agent["name"] for agent in listed.json()["items"])


# --- finding 6: size limits ---------------------------------------------------------------------


async def test_json_body_over_the_limit_is_413_before_it_is_read_whole(
    client: httpx.AsyncClient,
) -> None:
    body = Streamed(b'{"name": "', b"a" * CHUNK, 100 * MiB, b'"}')
    response = await client.post(
        "/api/agents", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert messages(response) == [
        f"The request body is larger than the limit of {DEFAULT_MAX_JSON_BODY_BYTES} bytes"
    ]
    assert body.pulled <= DEFAULT_MAX_JSON_BODY_BYTES + CHUNK


async def test_declared_oversized_body_is_413_without_reading_it(
    client: httpx.AsyncClient,
) -> None:
    body = Streamed(b"{", b" " * CHUNK, 100 * MiB, b"}")
    headers = {"Content-Type": "text/plain", "Content-Length": str(body.total)}
    response = await client.post("/api/agents", content=body, headers=headers)
    assert response.status_code == 413
    assert body.pulled <= CHUNK


async def multipart_upload(client: httpx.AsyncClient, total: int, **headers: str) -> Any:
    created = await client.post("/api/knowledge-bases", json={"name": "Manuals"})
    assert created.status_code == 201, created.text
    boundary = "stimm-edge-test"
    body = Streamed(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"'
        "\r\nContent-Type: text/plain\r\n\r\n".encode(),
        b"a" * CHUNK,
        total,
        f"\r\n--{boundary}--\r\n".encode(),
    )
    response = await client.post(
        f"/api/knowledge-bases/{created.json()['id']}/documents",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **headers},
    )
    documents = await client.get(f"/api/knowledge-bases/{created.json()['id']}/documents")
    assert documents.json()["count"] == 0
    return response, body


async def test_upload_over_the_limit_is_413_while_it_streams(client: httpx.AsyncClient) -> None:
    response, body = await multipart_upload(client, 200 * MiB)
    assert response.status_code == 413
    assert messages(response) == [
        f"The file is larger than the upload limit of {DEFAULT_MAX_UPLOAD_BYTES} bytes"
    ]
    assert body.pulled <= DEFAULT_MAX_UPLOAD_BYTES + 2 * CHUNK


async def test_declared_oversized_upload_is_413_without_reading_it(
    client: httpx.AsyncClient,
) -> None:
    response, body = await multipart_upload(client, 200 * MiB, **{"Content-Length": "209715200"})
    assert response.status_code == 413
    assert body.pulled == 0


# --- no tracebacks ------------------------------------------------------------------------------


async def test_a_failing_route_answers_without_a_traceback(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app = app_and_client[0]

    async def broken() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    app.router.routes.insert(0, APIRoute("/test-broken", broken))  # before the console's catch-all
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://control-plane") as client:
        response = await client.get("/test-broken")
    assert response.status_code == 500
    assert len(response.content) < SHORT
    assert b"Traceback" not in response.content
