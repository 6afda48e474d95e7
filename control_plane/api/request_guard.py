"""The control plane's request edge: what every request must satisfy before any route, the
API key check included, gets to see it.

- No NUL character in the path, the query or a JSON body (PostgreSQL cannot store one in text;
  it would otherwise end as a 500 deep in the database driver).
- A JSON body nests at most ``MAX_JSON_DEPTH`` levels: deeper ones would exhaust the Python
  stack in the JSON parser (``RecursionError``) and are refused before FastAPI parses them.
- A body is at most ``max_json_bytes`` long, an upload (``multipart/form-data``) at most the
  document limit plus ``MULTIPART_OVERHEAD``, a worker's recording (``audio/ogg``) at most
  ``max_recording_bytes``; all are counted as the bytes arrive, so an oversized request is
  refused after about the limit, never read whole.

Refusals are JSON: 422 shaped like FastAPI's own validation errors, 413 like its ``HTTPException``.
"""

from __future__ import annotations

import email.message
import json
import re
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 64
MULTIPART_OVERHEAD = 64 * 1024
"""Room for the part headers and boundaries around an uploaded document."""

# A JSON string literal, escapes included: brackets inside one nest nothing. An unterminated
# one runs to the end (the parser stops there too); possessive, so the scan stays linear.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def media_type(content_type: str | None) -> tuple[str, str]:
    """``(maintype, subtype)`` of a Content-Type header, lower-cased, parsed as FastAPI does."""
    message = email.message.Message()
    message["content-type"] = content_type or ""
    return message.get_content_maintype(), message.get_content_subtype()


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body with this Content-Type as JSON (missing counts: some
    FastAPI settings parse it as JSON too, and the guard must not be the weaker of the two)."""
    if not content_type:
        return True
    maintype, subtype = media_type(content_type)
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether brackets in ``text`` nest deeper than ``limit``; a scan, no recursion."""
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def has_nul(value: Any) -> bool:
    """Whether any string (key or value) in parsed JSON holds a NUL character."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def json_problem(body: bytes) -> str | None:
    """Why a JSON body is refused, or ``None``; malformed JSON is left to FastAPI to report."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        return None
    if json_depth_exceeds(text, MAX_JSON_DEPTH):
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not allowed"
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return "NUL characters are not allowed" if has_nul(parsed) else None


class BodyTooLarge(Exception):
    pass


class RequestGuard:
    """ASGI middleware enforcing the module's rules; limits are in bytes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_json_bytes: int,
        max_upload_bytes: int,
        max_recording_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes
        self.max_recording_bytes = max_recording_bytes or max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            await _invalid(send, "path", "NUL characters are not allowed")
            return
        if "\x00" in unquote(scope.get("query_string", b"").decode("latin-1")):
            await _invalid(send, "query", "NUL characters are not allowed")
            return
        headers = Headers(scope=scope)
        if "content-length" not in headers and "transfer-encoding" not in headers:
            # no body (RFC 9112 6.3): most requests, each GET among them, pass straight on
            await self.app(scope, receive, send)
            return
        content_type = headers.get("content-type")
        kind = media_type(content_type)
        if kind == ("multipart", "form-data"):
            limit = self.max_upload_bytes + MULTIPART_OVERHEAD
            too_large = f"The file is larger than the upload limit of {self.max_upload_bytes} bytes"
        elif kind == ("audio", "ogg"):
            limit = self.max_recording_bytes
            too_large = f"The recording is larger than the limit of {limit} bytes"
        else:
            limit = self.max_json_bytes
            too_large = f"The request body is larger than the limit of {limit} bytes"
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await _too_large(send, too_large)
            return
        if is_json(content_type):
            try:
                body = await _read_body(receive, limit)
            except BodyTooLarge:
                await _too_large(send, too_large)
                return
            problem = json_problem(body) if body else None
            if problem is not None:
                await _invalid(send, "body", problem)
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self._stream(scope, receive, send, limit, too_large)

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, limit: int, too_large: str
    ) -> None:
        """Pass the body through as it arrives; past ``limit`` answer 413 and tell the app
        the client has gone, so it stops reading (its own answer is then dropped)."""
        received = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        await _too_large(send, too_large)
                        refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app failed on the cut-off body; the client already has its 413.


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            break
    return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _respond(send: Send, status: int, content: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(content).encode()})


async def _invalid(send: Send, location: str, message: str) -> None:
    # Shaped like FastAPI's own 422 so clients (and the OpenAPI schema) need no special case.
    error = {"loc": [location], "msg": message, "type": "value_error"}
    await _respond(send, 422, {"detail": [error]})


async def _too_large(send: Send, message: str) -> None:
    await _respond(send, 413, {"detail": message})
