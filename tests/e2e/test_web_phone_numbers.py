"""The console's Phone numbers page in a real browser against the real stack: assign a number to
an agent (applied to livekit-server's SIP trunks), edit it, delete it; the API's refusals appear
next to the field they are about; the outbound-call form reports why it cannot call."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Page, expect

from stimm.stack import LocalStack
from tests.e2e.console import nav, shot, sign_in

pytestmark = pytest.mark.e2e

expect.set_options(timeout=20_000)


@pytest.fixture
async def api(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url,
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=20,
    ) as client:
        yield client


async def create_agent(api: httpx.AsyncClient, name: str) -> str:
    resp = await api.post(
        "/api/agents",
        json={
            "name": name,
            "instructions": "You answer the phone.",
            "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def test_assign_edit_and_delete_a_phone_number(
    page: Page, stack: LocalStack, api: httpx.AsyncClient
) -> None:
    await create_agent(api, "Front desk")
    await create_agent(api, "Night line")
    await sign_in(page, stack.api_key)
    await nav(page, "Phone numbers")
    await expect(page.get_by_role("heading", name="Phone numbers", exact=True)).to_be_visible()
    # This stack runs no livekit-sip, so the control plane cannot tell whether it is up.
    sip_status = page.get_by_test_id("sip-status")
    await expect(sip_status).to_be_visible()
    await expect(sip_status).to_contain_text("SIP service status unknown")
    rows = page.get_by_test_id("phone-number-row")

    # --- assign: typed with spaces, saved in international form, routed in LiveKit ----------
    await page.get_by_role("button", name="Add number").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Number").fill("+1 555 0100")
    await expect(dialog).to_contain_text("Saved as +15550100")
    await dialog.get_by_label("Label").fill("Reception")
    await dialog.get_by_label("Answered by").select_option(label="Front desk")
    await dialog.get_by_label("Allowed addresses").fill("10.0.0.0/8\n192.0.2.7")
    await dialog.get_by_role("button", name="Add number").click()
    await expect(dialog).to_have_count(0)
    row = rows.filter(has_text="+15550100")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Front desk")
    await expect(row).to_contain_text("Reception")
    await expect(row).to_contain_text("10.0.0.0/8, 192.0.2.7")
    await expect(row).to_contain_text("Routed")

    # --- a taken number, then a malformed one: the API's words under the Number field -------
    await page.get_by_role("button", name="Add number").click()
    number_field = dialog.locator(".field", has=page.locator("#pn-number"))
    await dialog.get_by_label("Number").fill("+15550100")
    await dialog.get_by_label("Answered by").select_option(label="Night line")
    await dialog.get_by_role("button", name="Add number").click()
    await expect(number_field.locator(".field-error")).to_contain_text("already assigned")
    await dialog.get_by_label("Number").fill("call me, maybe!")
    await dialog.get_by_role("button", name="Add number").click()
    await expect(number_field.locator(".field-error")).to_have_text(
        "Not a phone number: use digits with an optional leading +, e.g. +15550100."
    )
    await expect(dialog.locator(".field-error")).to_have_count(1)
    await shot(page, "09-phone-number-error")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(rows).to_have_count(1)

    # --- edit: another agent, digest credentials (the password is never shown back) ---------
    await row.get_by_role("button", name="Edit").click()
    await expect(dialog.get_by_label("Number")).to_be_disabled()
    await dialog.get_by_label("Answered by").select_option(label="Night line")
    await dialog.get_by_label("Require digest authentication").check()
    await dialog.get_by_label("User name").fill("pbx")
    await dialog.get_by_label("Password").fill("s3cret-passphrase")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog).to_have_count(0)
    await expect(row).to_contain_text("Night line")
    await expect(row).to_contain_text("Digest · pbx")
    stored = (await api.get("/api/phone-numbers")).json()["items"]
    assert [(n["number"], n["auth"], n["auth_username"]) for n in stored] == [
        ("+15550100", True, "pbx")
    ]
    assert "s3cret" not in (await api.get("/api/phone-numbers")).text

    await row.get_by_role("button", name="Edit").click()
    await expect(dialog.get_by_label("Password")).to_have_value("")
    await expect(dialog).to_contain_text("never shown")
    await dialog.get_by_role("button", name="Cancel").click()

    # --- the outbound-call form: a malformed number by its field, a refusal by the button ---
    call = page.get_by_role("region", name="Call a phone")
    await call.get_by_label("Agent").select_option(label="Front desk")
    await call.get_by_label("Number to call").fill("not a number!")
    await call.get_by_role("button", name="Call").click()
    to_field = call.locator(".field", has=page.locator("#call-to"))
    await expect(to_field.locator(".field-error")).to_contain_text("Not a phone number")
    await call.get_by_label("Number to call").fill("+1 555 0123")
    await call.get_by_role("button", name="Call").click()
    await expect(call.get_by_role("alert")).to_contain_text(
        re.compile("Outbound calling is not configured")
    )
    await expect(to_field.locator(".field-error")).to_have_count(0)
    await shot(page, "10-phone-numbers")

    # --- delete: asked first (Escape keeps the number), then gone from the page and the API -
    delete = row.get_by_role("button", name="Delete")
    await delete.click()
    confirm = page.get_by_role("alertdialog", name="Delete +15550100?")
    await expect(confirm).to_have_accessible_description(
        re.compile("^Calls to this number are refused")
    )
    await expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(confirm).to_have_count(0)
    await expect(delete).to_be_focused()
    await expect(rows).to_have_count(1)
    await delete.click()
    await confirm.get_by_role("button", name="Delete number").click()
    await expect(rows).to_have_count(0)
    await expect(page.get_by_role("heading", name="No phone numbers yet")).to_be_visible()
    assert (await api.get("/api/phone-numbers")).json()["count"] == 0
