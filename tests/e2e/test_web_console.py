"""The web console in a real browser (Debian's Chromium, headless) against the real stack:
build an agent with a knowledge base through the UI, talk to it through the fake microphone,
and find the call afterwards. Screenshots of every page land in tests/artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from stimm.stack import LocalStack
from tests.conftest import ARTIFACTS
from tests.support.audio import SAMPLE_RATE, synthesize, write_wav

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="apt-get install chromium"),
]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ARTIFACTS / "screenshots"
expect.set_options(timeout=20_000)
WEB_DIST = Path(__file__).parents[2] / "web" / "dist" / "index.html"

GREETING = "Hello, this is the Stimm test agent. How can I help you?"
QUESTION = "When is the museum open?"
DOCUMENT = "Museum opening hours.\n\nThe museum is open every Sunday afternoon, from two to six.\n"


def fake_microphone(path: Path) -> Path:
    """The question with silence around it: Chromium loops the file, and the agent's greeting
    should be over before the question is heard (and the answer before it comes round again)."""
    silence = np.zeros(SAMPLE_RATE * 9, dtype=np.int16)
    write_wav(path, np.concatenate([silence, synthesize(QUESTION), silence, silence]))
    return path


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    if not WEB_DIST.exists():
        pytest.fail("web/dist is missing: run 'cd web && npm ci && npm run build'")
    wav = fake_microphone(tmp_path / "microphone.wav")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
            ],
        )
        yield b
        await b.close()


@pytest.fixture
async def page(
    browser: Browser, stack: LocalStack, run_dir: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=stack.control_plane_url, viewport={"width": 1440, "height": 900}
    )
    p = await context.new_page()
    p.set_default_timeout(20_000)
    crashes: list[str] = []
    p.on(
        "console",
        lambda m: (
            print("CONSOLE", m.type, m.text[:2000]) if m.type in ("error", "warning") else None
        ),
    )
    p.on("pageerror", lambda e: crashes.append(f"{e.name}: {e.message}\n{e.stack}"))
    yield p
    # Where the test stopped, pass or fail (in this run's folder: runs may overlap).
    await p.screenshot(path=run_dir / f"last-{request.node.name}.png", full_page=True)
    await context.close()
    assert not crashes, "uncaught errors in the console:\n" + "\n".join(crashes)


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def nav(page: Page, name: str) -> None:
    await page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


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

    # --- the call, with its transcript, in Calls ---------------------------------------------
    await nav(page, "Calls")
    await page.get_by_label("Agent").select_option(label="Museum guide")
    calls = page.get_by_test_id("call-row")
    await expect(calls).to_have_count(1)
    await expect(calls.first).to_contain_text("Web")
    await shot(page, "07-calls")
    await calls.first.click()
    record = page.get_by_test_id("call-transcript")
    await expect(record.locator('[data-speaker="assistant"]').first).to_contain_text(
        "How can I help"
    )
    await expect(record.locator('[data-speaker="user"]').first).to_contain_text(
        re.compile("museum", re.I)
    )
    await expect(record).to_contain_text("Sunday afternoon")
    await expect(page.get_by_test_id("waterfall-row").first).to_be_visible()
    await expect(page.get_by_text("completed").first).to_be_visible(timeout=30_000)
    await shot(page, "08-call-detail")
