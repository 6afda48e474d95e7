"""The web console in a real browser (Debian's Chromium, headless) against the real stack:
build an agent with a knowledge base through the UI, talk to it through the fake microphone,
and find the call afterwards. Screenshots of every page land in tests/artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from stimm.stack import LocalStack
from tests.e2e.console import (
    chromium,
    console_page,
    fake_media_args,
    fake_microphone,
    nav,
    shot,
    sign_in,
)

pytestmark = pytest.mark.e2e

expect.set_options(timeout=20_000)

GREETING = "Hello, this is the Stimm test agent. How can I help you?"
DOCUMENT = "Museum opening hours.\n\nThe museum is open every Sunday afternoon, from two to six.\n"


@pytest.fixture
async def page(
    stack: LocalStack, run_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """The console in a Chromium whose microphone plays the spoken question."""
    fake_media = fake_media_args(fake_microphone(tmp_path / "microphone.wav"))
    async with (
        chromium(fake_media) as browser,
        console_page(browser, stack, run_dir / f"last-{request.node.name}.png") as p,
    ):
        yield p


async def test_a_wrong_key_is_refused_clearly_and_the_right_one_opens_the_console(
    page: Page, stack: LocalStack
) -> None:
    await sign_in(page, "stimm_not-a-key")
    await expect(page.get_by_role("alert")).to_contain_text("unknown or has been revoked")
    await shot(page, "01-sign-in-refused")

    await page.get_by_label("API key").fill(stack.api_key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
    # The key lives in the tab: a reload keeps the console open.
    await page.reload()
    await expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()


async def test_build_an_agent_with_knowledge_talk_to_it_and_find_the_call(
    page: Page, stack: LocalStack, fake_llm_url: str, tmp_path: Path
) -> None:
    await sign_in(page, stack.api_key)
    await expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()

    # --- a knowledge base with one document, ingested ----------------------------------------
    await nav(page, "Knowledge bases")
    await page.get_by_role("button", name="New knowledge base").click()
    await page.get_by_label("Name").fill("Museum facts")
    await page.get_by_label("Description").fill("Opening hours and tickets")
    await page.get_by_role("button", name="Create", exact=True).click()
    await expect(page.get_by_role("heading", name="Museum facts")).to_be_visible()

    doc = tmp_path / "opening-hours.txt"
    doc.write_text(DOCUMENT)
    await page.get_by_test_id("document-input").set_input_files(doc)
    row = page.get_by_test_id("document-row").filter(has_text="opening-hours.txt")
    await expect(row.get_by_test_id("document-status")).to_contain_text("Ingested", timeout=120_000)

    await page.get_by_label("Question").fill("When can I visit the museum?")
    await page.get_by_role("button", name="Search").click()
    results = page.get_by_test_id("query-results")
    await expect(results).to_contain_text("Sunday afternoon")
    await expect(results).to_contain_text(re.compile(r"1 chunk in [\d.]+ ms"))
    await shot(page, "02-knowledge-base")

    # --- an agent: a bad field is reported next to it, then the agent is created -------------
    await nav(page, "Agents")
    await page.get_by_role("link", name="New agent").click()
    await page.get_by_label("Instructions").fill(
        "You answer questions about the museum in one short sentence."
    )
    await page.get_by_label("Greeting").fill(GREETING)
    await page.locator("#llm-0-provider").select_option("openai")
    await page.locator("#llm-0-opt-base_url").fill(fake_llm_url)
    await page.locator("#llm-0-model").fill("scripted")
    await page.get_by_label("Knowledge base").select_option(label="Museum facts")
    await page.get_by_role("button", name="Create agent").click()  # no name yet
    name_field = page.locator(".field", has=page.locator("#agent-name"))
    await expect(name_field.locator(".field-error")).to_contain_text("at least 1 character")
    await shot(page, "03-agent-form-error")

    await page.get_by_label("Name").fill("Museum guide")
    await page.get_by_role("button", name="Create agent").click()
    await expect(page).to_have_url(re.compile(r"/agents/[0-9a-f-]{36}$"))
    await expect(page.get_by_role("heading", name="Museum guide")).to_be_visible()
    await expect(page.locator(".field-error")).to_have_count(0)
    await shot(page, "04-agent-form")
    agent_id = page.url.rsplit("/", 1)[1]

    await nav(page, "Agents")
    guide = page.get_by_role("row").filter(has_text="Museum guide")
    await expect(guide.first).to_contain_text(re.compile("openai · scripted", re.I))
    await expect(guide.first).to_contain_text("Museum facts")
    await guide.first.get_by_role("button", name="Duplicate").click()
    copy = page.get_by_role("row").filter(has_text="Museum guide (copy)")
    await expect(copy).to_have_count(1)
    await copy.get_by_role("button", name="Delete").click()
    await page.get_by_role("button", name="Delete agent").click()
    await expect(copy).to_have_count(0)
    await shot(page, "05-agents")

    # --- talk: greeting, the spoken question, the answer, and the turn's latency ------------
    await page.goto(f"/talk?agent={agent_id}")
    await expect(page.get_by_label("Agent")).to_have_value(agent_id)
    await page.get_by_role("button", name="Start call").click()
    transcript = page.get_by_test_id("transcript")
    agent_says = transcript.locator('[data-speaker="agent"]')
    user_says = transcript.locator('[data-speaker="user"]')
    await expect(agent_says.first).to_contain_text("How can I help", timeout=90_000)
    await expect(user_says.filter(has_text=re.compile("museum", re.I)).first).to_be_visible(
        timeout=60_000
    )
    await expect(agent_says.filter(has_text="Sunday afternoon").first).to_be_visible(timeout=60_000)
    row = page.get_by_test_id("waterfall-row").filter(has_text=re.compile("museum", re.I))
    await expect(row.first).to_be_visible(timeout=30_000)
    await expect(row.first.locator(".wf-bar.st-llm")).to_have_count(1)
    await expect(row.first.locator(".wf-value")).to_contain_text(re.compile(r"\d+ (ms|s)"))
    await expect(page.get_by_label("Microphone")).to_be_visible()
    await shot(page, "06-talk")
    await page.get_by_role("button", name="Hang up").click()
    await expect(page.get_by_role("heading", name="Call ended")).to_be_visible()

    # --- the session, with its transcript, in Sessions ---------------------------------------
    await nav(page, "Sessions")
    # the Talk page has an "Agent" select too: pick the agent only once Sessions is shown
    await expect(page).to_have_url(re.compile(r"/sessions$"))
    await page.get_by_label("Agent").select_option(label="Museum guide")
    sessions = page.get_by_test_id("session-row")
    await expect(sessions).to_have_count(1)
    await expect(sessions.first).to_contain_text("Web")
    await shot(page, "07-sessions")
    await sessions.first.click()
    record = page.get_by_test_id("session-transcript")
    await expect(record.locator('[data-speaker="assistant"]').first).to_contain_text(
        "How can I help"
    )
    await expect(record.locator('[data-speaker="user"]').first).to_contain_text(
        re.compile("museum", re.I)
    )
    await expect(record).to_contain_text("Sunday afternoon")
    await expect(page.get_by_test_id("waterfall-row").first).to_be_visible()
    await expect(page.get_by_text("completed").first).to_be_visible(timeout=30_000)
    await shot(page, "08-session-detail")
