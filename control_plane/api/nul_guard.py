"""Refuse NUL characters at the edge: PostgreSQL cannot store them in text, and a request
carrying one would otherwise end as a 500 deep in the database driver."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _detail(location: str) -> bytes:
    # Shaped like FastAPI's own 422 so clients (and the OpenAPI schema) need no special case.
    error = {"loc": [location], "msg": "NUL characters are not allowed", "type": "value_error"}
    return json.dumps({"detail": [error]}).encode()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class NulGuard:
    """ASGI middleware: 422 for a NUL in the path, the query or a JSON body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if "\x00" in scope["path"]:
            await _refuse(send, "path")
            return
        if "\x00" in unquote(query):
            await _refuse(send, "query")
            return
        headers = dict(scope.get("headers", []))
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None  # FastAPI reports malformed JSON itself
        if _has_nul(parsed):
            await _refuse(send, "body")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": _detail(location)})
