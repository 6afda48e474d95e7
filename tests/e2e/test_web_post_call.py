"""After the call, in a real browser against the real stack: the call page shows the analysis
the agent's LLM wrote, the call list filters on it and exports it as CSV, and the Webhooks page
creates an endpoint, logs its ``session.ended`` delivery (retried after a 500) and resends it."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from stimm.stack import LocalStack
from tests.e2e.console import nav, shot, sign_in

pytestmark = pytest.mark.e2e

expect.set_options(timeout=30_000)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    """A webhook endpoint that answers 500 to its first request, then 200."""
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        seen.append(request)
        return web.Response(status=500 if len(seen) == 1 else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", seen, bodies
    await runner.cleanup()


async def test_analysis_on_the_call_page_and_a_resent_webhook(
    page: Page,
    stack: LocalStack,
    fake_llm_url: str,
    receiver: tuple[str, list[web.Request], list[bytes]],
    tmp_path: Path,
) -> None:
    url, seen, bodies = receiver
    await sign_in(page, stack.api_key)
    await nav(page, "Webhooks")
    await page.get_by_role("button", name="New endpoint").click()
    await page.get_by_label("URL").fill(url)
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.get_by_test_id("webhook-secret")).to_contain_text("whsec_")
    await page.get_by_role("button", name="Done").click()

    async with httpx.AsyncClient(base_url=stack.control_plane_url, timeout=20) as api:
        agent = await api.post(
            "/api/agents",
            headers=stack.api_headers,
            json={
                "name": "Repairs desk",
                "instructions": "You take repair requests.",
                "llm": {"provider": "llamacpp", "options": {"base_url": fake_llm_url}},
                "analysis": {
                    "enabled": True,
                    "fields": [
                        {"name": "caller_name", "type": "string", "description": "Name"},
                        {"name": "resolved", "type": "boolean", "description": "Solved?"},
                    ],
                },
            },
        )
        assert agent.status_code == 201, agent.text
        # a phone call as the worker reports it (the worker's own path is covered elsewhere)
        worker = {"Authorization": f"Bearer {stack.options.worker_token}"}
        created = await api.post(
            "/api/worker/sessions",
            headers=worker,
            json={"agent_id": agent.json()["id"], "room": f"sip-e2e-{tmp_path.name}"},
        )
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        base = f"/api/worker/sessions/{session_id}"
        for path, body in [
            ("events", {"status": "active"}),
            ("turns", {"role": "user", "text": "My dishwasher leaks.", "key": "e2e:1"}),
            ("events", {"status": "completed"}),
        ]:
            response = await api.post(f"{base}/{path}", json=body, headers=worker)
            assert response.status_code in (200, 201), response.text

    await nav(page, "Sessions")
    await page.get_by_label("Field").fill("resolved")
    await page.get_by_label("Value").fill("false")
    rows = page.get_by_test_id("session-row")
    await expect(rows).to_have_count(1)
    async with page.expect_download() as download:
        await page.get_by_role("button", name="Export CSV").click()
    saved = tmp_path / "sessions.csv"
    await (await download.value).save_as(saved)
    [row] = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert (row["id"], row["caller_name"], row["resolved"]) == (session_id, "Ada", "false")

    await rows.first.click()
    analysis = page.get_by_test_id("session-analysis")
    await expect(analysis).to_have_attribute("data-status", "succeeded")
    await expect(analysis).to_contain_text("Ada reported a leaking dishwasher.")
    await expect(analysis.locator("[data-field=caller_name]")).to_have_text("Ada")
    await expect(analysis.locator("[data-field=resolved]")).to_have_text("false")
    await shot(page, "14-session-analysis")

    await nav(page, "Webhooks")
    deliveries = page.get_by_test_id("delivery-row")
    await expect(deliveries).to_have_count(1)
    # the 500 is retried after STIMM_WEBHOOK_RETRY_BASE_S (5 s)
    await expect(deliveries.first).to_have_attribute("data-status", "succeeded")
    await expect(deliveries.first).to_contain_text("HTTP 200")
    await deliveries.first.get_by_role("button", name="Resend").click()
    await expect(deliveries).to_have_count(2)
    await expect(deliveries.first).to_contain_text("resent")
    await expect(deliveries.first).to_have_attribute("data-status", "succeeded")
    await shot(page, "15-webhook-deliveries")
    assert len(seen) == 3
    assert len(set(bodies)) == 1 and {r.headers["Stimm-Event"] for r in seen} == {"session.ended"}
