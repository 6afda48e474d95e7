"""Campaigns against real PostgreSQL: the CSV's checks, the life of a campaign, and a runner
taking over from a control plane that stopped mid-call without dialling anyone again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from control_plane.campaigns.models import CampaignAttempt, CampaignRow
from control_plane.campaigns.runner import CampaignRunner
from control_plane.models import utcnow
from control_plane.telephony import crud as phone_crud
from tests.integration.control_plane_env import (
    DATABASE_URL,
    app_client,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration

CSV = "phone_number,first_name,timezone\n+14155550101,Ada,America/Los_Angeles\n+33142685300,Léa,\n"


@pytest_asyncio.fixture(scope="module")
async def env() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with fresh_database(DATABASE_URL) as url, app_client(make_settings(url)) as pair:
        yield pair


async def make_agent(http: httpx.AsyncClient, **extra: Any) -> str:
    body = {
        "name": "Reminder",
        "instructions": "You remind {first_name} of the appointment.",
        "greeting": "Hello {first_name}!",
        "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        **extra,
    }
    resp = await http.post("/api/agents", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def campaign_body(agent_id: str, csv: str = CSV, **extra: Any) -> dict[str, Any]:
    return {"name": "Reminders", "agent_id": agent_id, "csv": csv, "start": False, **extra}


async def test_bad_rows_and_missing_variables_are_named_with_their_line(
    env: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = env
    agent_id = await make_agent(http)
    bad = "phone_number,first_name\n+14155550101,Ada\n0155550102,Bob\n+1415,Cy\n+14155550101,Di\n"
    resp = await http.post("/api/campaigns", json=campaign_body(agent_id, bad))
    assert resp.status_code == 422, resp.text
    msgs = [d["msg"] for d in resp.json()["detail"]]
    assert any(m.startswith("line 3:") and "E.164" in m for m in msgs), msgs
    assert any(m.startswith("line 4:") and "E.164" in m for m in msgs), msgs
    assert any(m.startswith("line 5:") and "already on line 2" in m for m in msgs), msgs
    assert len(msgs) == 3, msgs

    no_column = "phone_number,last_name\n+14155550101,Lovelace\n"
    resp = await http.post("/api/campaigns", json=campaign_body(agent_id, no_column))
    assert resp.status_code == 422, resp.text
    assert "{first_name}" in resp.text and "no 'first_name' column" in resp.text

    resp = await http.post(
        "/api/campaigns", json=campaign_body(agent_id, timezone="Mars/Olympus_Mons")
    )
    assert resp.status_code == 422 and "unknown time zone" in resp.text


async def test_campaign_rows_start_pause_resume_cancel(
    env: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = env
    agent_id = await make_agent(http)
    resp = await http.post("/api/campaigns", json=campaign_body(agent_id, concurrency=2))
    assert resp.status_code == 201, resp.text
    campaign = resp.json()
    assert campaign["status"] == "draft" and campaign["columns"] == ["first_name"]
    assert campaign["progress"]["total"] == 2 and campaign["progress"]["pending"] == 2
    rows = (await http.get(f"/api/campaigns/{campaign['id']}/rows")).json()["items"]
    assert [(r["number"], r["timezone"], r["variables"]) for r in rows] == [
        ("+14155550101", "America/Los_Angeles", {"first_name": "Ada"}),
        ("+33142685300", "Europe/Paris", {"first_name": "Léa"}),  # from the number
    ]
    cid = campaign["id"]
    assert (await http.post(f"/api/campaigns/{cid}/pause")).status_code == 409
    assert (await http.post(f"/api/campaigns/{cid}/start")).json()["status"] == "running"
    assert (await http.post(f"/api/campaigns/{cid}/pause")).json()["status"] == "paused"
    assert (await http.post(f"/api/campaigns/{cid}/resume")).json()["status"] == "running"
    cancelled = (await http.post(f"/api/campaigns/{cid}/cancel")).json()
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["cancelled"] == 2
    assert (await http.post(f"/api/campaigns/{cid}/resume")).status_code == 409
    assert (await http.get("/api/campaigns/nope")).status_code == 404


async def test_a_call_interrupted_by_a_restart_is_finished_not_redialled(
    env: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """A row left ``calling`` by a stopped control plane: the next runner takes it once the
    lease has expired, reads the call's outcome from its session and dials nobody."""
    app, http = env
    agent_id = await make_agent(http)
    csv = "phone_number,first_name\n+14155550101,Ada\n"
    campaign = (
        await http.post(
            "/api/campaigns",
            json=campaign_body(
                agent_id,
                csv,
                window_start="00:00",
                window_end="23:59",
                retry_on=["voicemail"],
                max_attempts=2,
            ),
        )
    ).json()
    sessionmaker = app.state.sessionmaker
    async with sessionmaker() as db:
        voice_session, call = await phone_crud.create_phone_call(
            db, agent_id=agent_id, direction="outbound", callee="+14155550101"
        )
        call.outcome, call.answered_by = "answered", "machine"
        voice_session.status, voice_session.started_at, voice_session.ended_at = (
            "completed",
            utcnow(),
            utcnow(),
        )
        db.add(call)
        db.add(voice_session)
        row = (await http.get(f"/api/campaigns/{campaign['id']}/rows")).json()["items"][0]
        stored = await db.get(CampaignRow, row["id"])
        assert stored is not None
        stored.status, stored.attempts = "calling", 1
        stored.lease_owner = "a-control-plane-that-died"
        stored.lease_expires_at = utcnow() - timedelta(seconds=1)
        db.add(stored)
        db.add(
            CampaignAttempt(
                row_id=stored.id,
                number=1,
                key=f"{stored.id}:1",
                call_id=call.id,
                session_id=voice_session.id,
            )
        )
        await db.commit()
    await http.post(f"/api/campaigns/{campaign['id']}/start")

    runner = CampaignRunner(sessionmaker, app.state.settings, app.state.livekit, lease_s=5.0)
    try:
        await runner.tick()
        for task in list(runner._calls.values()):
            await task
    finally:
        await runner.aclose()
    rows = (await http.get(f"/api/campaigns/{campaign['id']}/rows")).json()["items"]
    # voicemail is retried (retry_on) but the retry waits for the delay: one call so far
    assert rows[0]["attempts"] == 1 and rows[0]["outcome"] == "voicemail", rows
    assert [c["outcome"] for c in rows[0]["calls"]] == ["voicemail"], rows
    assert rows[0]["status"] == "pending", rows
    calls = (await http.get("/api/calls", params={"agent_id": agent_id})).json()
    assert calls["count"] == 1, calls  # nobody was dialled again
