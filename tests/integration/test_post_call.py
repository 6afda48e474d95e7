"""Post-call work against real PostgreSQL, a scripted OpenAI-compatible LLM and a real HTTP
webhook receiver: the analysis fills the agent's fields (or reports a malformed answer), the
call list filters and exports on them, and ``session.ended`` reaches its endpoint once, signed,
after two failures and a control-plane restart between tries."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from fastapi import FastAPI

from control_plane import crud
from control_plane.postcall import crud as postcall_crud
from testkit.fakes.openai_server import FakeOpenAIServer
from tests.integration.control_plane_env import (
    DATABASE_URL,
    WORKER_HEADERS,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration

ANALYSIS = {
    "caller_name": "Ada Lovelace",
    "callback_number": "+1 555 010 2345",
    "reason": "Her dishwasher leaks",
    "resolved": False,
    "summary": "Ada called about a leaking dishwasher; a technician will call back.",
}
FIELDS = [
    {"name": "caller_name", "type": "string", "description": "The caller's name"},
    {"name": "callback_number", "type": "string", "description": "Number to call back"},
    {"name": "reason", "type": "string", "description": "Why they called"},
    {"name": "resolved", "type": "boolean", "description": "Whether the call solved it"},
]
# keyed by a word of the transcript the analysis prompt carries
LLM_RULES: list[tuple[str, str | dict[str, Any]]] = [
    ("dishwasher", json.dumps(ANALYSIS)),
    ("toaster", 'Sure! {"caller_name": "Bob", "resolved": "maybe"'),
    ("kettle", json.dumps({**ANALYSIS, "resolved": "yes"})),
]


@pytest_asyncio.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    async with fresh_database(DATABASE_URL) as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def llm() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(LLM_RULES) as server:
        yield server


class Receiver:
    """A webhook endpoint answering the scripted status codes in turn (then 200)."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        code = self.codes.pop(0) if self.codes else 200
        return web.Response(status=code, text="scripted")


async def make_agent(client: httpx.AsyncClient, llm_url: str, **extra: Any) -> str:
    response = await client.post(
        "/api/agents",
        json={
            "name": "Repairs desk",
            "instructions": "You take repair requests.",
            "llm": {"provider": "llamacpp", "model": "fake", "options": {"base_url": llm_url}},
            "analysis": {"enabled": True, "fields": FIELDS},
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def finished_call(app: FastAPI, client: httpx.AsyncClient, agent_id: str, said: str) -> str:
    """A session the worker reports from start to end, with a two-turn transcript."""
    async with app.state.sessionmaker() as db:
        voice_session = await crud.create_session(
            db, agent_id=agent_id, channel="phone", participant_identity="sip-test"
        )
    base = f"/api/worker/sessions/{voice_session.id}"
    for path, body in [
        ("events", {"status": "active"}),
        ("turns", {"role": "assistant", "text": "Repairs desk, how can I help?", "key": "j:1"}),
        ("turns", {"role": "user", "text": said, "key": "j:2"}),
        ("events", {"status": "completed"}),
    ]:
        response = await client.post(f"{base}/{path}", json=body, headers=WORKER_HEADERS)
        assert response.status_code in (200, 201), response.text
    return voice_session.id


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if value := await check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.1)


async def analysed(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body = (await client.get(f"/api/sessions/{session_id}")).json()
        analysis = body["analysis"]
        return body if analysis and analysis["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = await until(done)
    return result


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    parts = dict(p.split("=", 1) for p in headers["Stimm-Signature"].split(","))
    digest = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return int(parts["t"]), digest.hexdigest()


async def test_session_ended_is_delivered_once_signed_through_failures_and_a_restart(
    database_url: str, llm: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STIMM_WEBHOOK_RETRY_BASE_S", "2")
    settings = make_settings(database_url)
    async with Receiver([500, 500]) as receiver:
        async with app_client(settings) as (app, client):
            agent_id = await make_agent(
                client, llm.base_url, recording={"enabled": True, "retention_days": 7}
            )
            created = await client.post(
                "/api/webhooks", json={"url": receiver.url, "events": ["session.ended"]}
            )
            assert created.status_code == 201, created.text
            endpoint, secret = created.json()["id"], created.json()["secret"]
            log = f"/api/webhooks/{endpoint}/deliveries"
            session_id = await finished_call(app, client, agent_id, "My dishwasher leaks.")

            async def first_try_recorded() -> bool:
                items = (await client.get(log)).json()["items"]
                return bool(items) and items[0]["attempts"] == 1 and items[0]["status"] == "pending"

            await until(first_try_recorded)
            [first] = (await client.get(log)).json()["items"]
            assert first["last_status_code"] == 500
            assert len(receiver.received) == 1
        # the control plane is gone between the first and the second try

        async with app_client(settings) as (app, client):
            app.state.postcall.start()  # as its lifespan does

            async def delivered() -> dict[str, Any] | None:
                items = (await client.get(log)).json()["items"]
                return items[0] if items and items[0]["status"] == "succeeded" else None

            delivery = await until(delivered)
            assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
            # a repeated outcome report (a worker retry) queues nothing more
            again = await client.post(
                f"/api/worker/sessions/{session_id}/events",
                json={"status": "completed"},
                headers=WORKER_HEADERS,
            )
            assert again.status_code == 200
            await asyncio.sleep(2.5)
            assert (await client.get(log)).json()["count"] == 1

    assert len(receiver.received) == 3
    assert len({body for _, body in receiver.received}) == 1  # the same event each time
    for headers, body in receiver.received:
        timestamp, digest = expected_signature(secret, headers, body)
        assert hmac.compare_digest(headers["Stimm-Signature"].split("v1=")[1], digest)
        assert abs(time.time() - timestamp) < 300
        assert headers["Stimm-Event"] == "session.ended"
    event = json.loads(receiver.received[-1][1])
    assert event["type"] == "session.ended"
    assert event["data"]["session"]["id"] == session_id
    assert event["data"]["outcome"]["status"] == "completed"
    assert [t["text"] for t in event["data"]["transcript"]][1] == "My dishwasher leaks."
    analysis = event["data"]["analysis"]
    assert analysis["status"] == "succeeded"
    assert analysis["summary"] == ANALYSIS["summary"]
    assert analysis["data"] == {k: v for k, v in ANALYSIS.items() if k != "summary"}
    # uploaded after the outcome: the link is the API path that signs a URL once it is there
    assert event["data"]["recording_url"] == f"/api/sessions/{session_id}/recording"


async def test_analysis_fills_the_fields_filters_and_exports(
    database_url: str, llm: FakeOpenAIServer
) -> None:
    async with app_client(make_settings(database_url)) as (app, client):
        agent_id = await make_agent(client, llm.base_url)
        good = await finished_call(app, client, agent_id, "My dishwasher leaks.")
        bad = await finished_call(app, client, agent_id, "My toaster is on fire.")
        wrong_type = await finished_call(app, client, agent_id, "My kettle whistles.")

        record = await analysed(client, good)
        assert record["analysis"]["status"] == "succeeded"
        async with app.state.sessionmaker() as db:  # the agent does not record
            voice_session = await crud.get_session(db, good)
            assert voice_session is not None
            assert (await postcall_crud.session_ended_data(db, voice_session))[
                "recording_url"
            ] is None
        assert record["analysis"]["data"]["callback_number"] == "+1 555 010 2345"
        assert record["analysis"]["data"]["resolved"] is False
        assert record["analysis"]["summary"].startswith("Ada called")
        # what the LLM was asked: the transcript, and the fields with their descriptions
        prompt = next(r for r in llm.requests if "dishwasher" in json.dumps(r))
        assert "Number to call back" in prompt["messages"][0]["content"]
        assert prompt["response_format"]["type"] == "json_schema"

        for session_id, problem in [(bad, "not JSON"), (wrong_type, "resolved")]:
            failed = (await analysed(client, session_id))["analysis"]
            assert failed["status"] == "failed"
            assert failed["data"] is None and failed["summary"] is None
            assert problem in failed["error"], failed["error"]

        def ids(response: httpx.Response) -> set[str]:
            assert response.status_code == 200, response.text
            return {s["id"] for s in response.json()["items"]}

        params = {"agent_id": agent_id}
        unresolved = {**params, "analysis_field": "resolved", "analysis_value": "false"}
        assert ids(await client.get("/api/sessions", params=unresolved)) == {good}
        resolved = {**params, "analysis_field": "resolved", "analysis_value": "true"}
        assert ids(await client.get("/api/sessions", params=resolved)) == set()
        by_reason = {**params, "analysis_field": "reason", "analysis_value": "DISHWASHER"}
        assert ids(await client.get("/api/sessions", params=by_reason)) == {good}
        failures = {**params, "analysis_status": "failed"}
        assert ids(await client.get("/api/sessions", params=failures)) == {bad, wrong_type}
        orphan = await client.get("/api/sessions", params={"analysis_value": "x"})
        assert orphan.status_code == 422 and "analysis_field" in orphan.text

        export = await client.get("/api/sessions/export.csv", params=params)
        assert export.status_code == 200
        assert export.headers["content-type"].startswith("text/csv")
        rows = {r["id"]: r for r in csv.DictReader(io.StringIO(export.text))}
        assert set(rows) == {good, bad, wrong_type}
        assert rows[good]["callback_number"] == "'+1 555 010 2345"  # not a formula
        assert rows[good]["resolved"] == "false"
        assert rows[bad]["analysis_status"] == "failed" and rows[bad]["callback_number"] == ""


async def test_redaction_masks_the_stored_transcript_and_analysis(
    database_url: str, llm: FakeOpenAIServer
) -> None:
    async with app_client(make_settings(database_url)) as (app, client):
        agent_id = await make_agent(client, llm.base_url, redact_pii=True)
        said = (
            "My dishwasher leaks, call 555-0100 or mail ada@example.com, card 4111 1111 1111 1111"
        )
        session_id = await finished_call(app, client, agent_id, said)
        record = await analysed(client, session_id)
        assert record["turns"][1]["text"] == (
            "My dishwasher leaks, call [phone number] or mail [email], card [card number]"
        )
        assert record["analysis"]["data"]["callback_number"] == "[phone number]"
        assert record["analysis"]["data"]["caller_name"] == "Ada Lovelace"
        # the LLM never saw what was masked
        assert not any("555-0100" in json.dumps(r) for r in llm.requests)


async def test_endpoints_refuse_bad_input_and_resend_repeats_the_event(
    database_url: str, llm: FakeOpenAIServer
) -> None:
    async with Receiver([]) as receiver, app_client(make_settings(database_url)) as (app, client):
        app.state.postcall.start()
        refused = [
            {"url": "http://169.254.169.254/latest", "events": ["session.ended"]},
            {"url": "ftp://example.com/hook", "events": ["session.ended"]},
            {"url": receiver.url, "events": ["call.ended"]},
            {"url": receiver.url, "events": []},
            {"url": receiver.url, "events": ["session.ended"], "secret": "tiny-secret"},
        ]
        for body in refused:
            response = await client.post("/api/webhooks", json=body)
            assert response.status_code == 422, (body, response.text)
            assert "tiny-secret" not in response.text  # a rejected secret is not echoed
        assert "metadata" in (await client.post("/api/webhooks", json=refused[0])).text

        created = await client.post(
            "/api/webhooks",
            json={"url": receiver.url, "events": ["session.started"], "secret": "x" * 20},
        )
        endpoint = created.json()["id"]
        assert "secret" not in (await client.get(f"/api/webhooks/{endpoint}")).json()
        agent_id = await make_agent(client, llm.base_url, analysis={"enabled": False})
        session_id = await finished_call(app, client, agent_id, "My dishwasher leaks.")
        log = f"/api/webhooks/{endpoint}/deliveries"

        async def all_delivered() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (await client.get(log)).json()["items"]
            return items if items and all(i["status"] == "succeeded" for i in items) else None

        [started] = await until(all_delivered)
        assert started["event"] == "session.started"
        assert started["payload"]["data"]["id"] == session_id
        resent = await client.post(f"{log}/{started['id']}/resend")
        assert resent.status_code == 202, resent.text
        assert resent.json()["resent_from"] == started["id"]
        items = await until(lambda: _two(all_delivered))
        assert {i["event_id"] for i in items} == {started["event_id"]}
        assert [h["Stimm-Event-Id"] for h, _ in receiver.received] == [started["event_id"]] * 2
        missing = await client.post(f"{log}/no-such-delivery/resend")
        assert missing.status_code == 404

        assert (await client.delete(f"/api/webhooks/{endpoint}")).status_code == 204
        assert (await client.get(log)).status_code == 404


async def _two(check: Callable[[], Awaitable[list[dict[str, Any]] | None]]) -> Any:
    items = await check()
    return items if items and len(items) == 2 else None
