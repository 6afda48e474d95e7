"""The request guard's JSON rules on their own: which media types are JSON, and how deep a
body nests (brackets inside strings nest nothing)."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from control_plane.api.request_guard import MAX_JSON_DEPTH, RequestGuard, is_json, json_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("application/vnd.api+JSON", True),
        (None, True),
        ("multipart/form-data; boundary=x", False),
        ("text/plain", False),
        ("application/jsonx", False),
        ("text/json", False),
    ],
)
def test_json_media_types_are_those_fastapi_parses_as_json(
    content_type: str | None, expected: bool
) -> None:
    assert is_json(content_type) is expected


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, None),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
        (b'{"a": "' + b"[" * 500 + b'"}', None),
        (b'{"a": "\\"' + b"{" * 500 + b'"}', None),
        (b'["\\\\", ' + b"[" * 500 + b"]", "nested deeper"),
        (b'"unterminated ' + b"[" * 500, None),
        ("[" * 500, "nested deeper"),
        (b'{"name": "a\\u0000b"}', "NUL"),
        (b'{"a\\u0000": 1}', "NUL"),
        (b'{"name": "a\\\\u0000b"}', None),
        (b"\xff\xfe not json", None),
    ],
)
def test_json_problems(body: bytes | str, problem: str | None) -> None:
    data = body.encode("utf-16") if isinstance(body, str) else body
    found = json_problem(data)
    assert (found is None) if problem is None else (problem in (found or ""))


async def test_a_content_length_that_is_no_number_is_left_to_the_server() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"hi", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    guard = RequestGuard(app, max_json_bytes=1024, max_upload_bytes=1024)
    headers = [(b"content-type", b"text/plain"), (b"content-length", "²".encode("latin-1"))]
    scope = {"type": "http", "path": "/", "query_string": b"", "headers": headers}
    await guard(scope, receive, send)
    assert sent[0]["status"] == 200
