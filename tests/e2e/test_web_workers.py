"""The console's Workers page in a real browser against the real stack: the stack's one worker is
listed from its heartbeats as ready, idle, with its session slots, and the pool summary adds up."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.async_api import Page, expect

from stimm.stack import LocalStack
from tests.e2e.console import nav, shot, sign_in

pytestmark = pytest.mark.e2e

expect.set_options(timeout=20_000)


async def test_the_running_worker_is_listed_ready_with_its_free_slots(
    page: Page, stack: LocalStack
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url,
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=20,
    ) as api:
        # a freshly started stack's worker reports its first heartbeat within a few seconds; on
        # the shared stack an earlier test's call may still be ending: wait until it has
        for _ in range(120):
            pool = (await api.get("/api/workers")).json()
            if pool["count"] and pool["sessions"] == 0:
                break
            await asyncio.sleep(0.5)
    assert pool["count"] == stack.options.workers == 1, pool
    worker = pool["items"][0]
    slots = worker["max_sessions"]

    await sign_in(page, stack.api_key)
    await nav(page, "Workers")
    await expect(page.get_by_role("heading", name="Workers", exact=True)).to_be_visible()
    rows = page.get_by_test_id("worker-row")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row).to_contain_text(worker["worker_id"])
    await expect(row.locator(".badge")).to_have_text("Ready")
    await expect(row.get_by_test_id("worker-sessions")).to_have_text(f"0 / {slots}")
    await expect(row.get_by_role("progressbar", name="Load")).to_have_attribute(
        "aria-valuenow", re.compile(r"^\d{1,3}$")
    )
    await expect(row).to_contain_text(re.compile(r"just now|\d+s ago"))
    summary = page.get_by_test_id("workers-summary")
    await expect(summary).to_contain_text(f"0 / {slots} slots")
    await expect(summary).to_contain_text(f"Free slots{slots}")
    await shot(page, "11-workers")
