"""Driving the web console in Debian's Chromium with Playwright (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright

from testkit.audio import SAMPLE_RATE, synthesize, write_wav
from tests.conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ARTIFACTS / "screenshots"
WEB_DIST = Path(__file__).parents[2] / "web" / "dist" / "index.html"

# This machine's network is closed: without these Chromium keeps trying Google's services.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

QUESTION = "When is the museum open?"
"""What the fake microphone of ``fake_microphone`` says."""


def fake_microphone(path: Path) -> Path:
    """The question with silence around it: Chromium loops the file, and the agent's greeting
    should be over before the question is heard (and the answer before it comes round again)."""
    silence = np.zeros(SAMPLE_RATE * 9, dtype=np.int16)
    write_wav(path, np.concatenate([silence, synthesize(QUESTION), silence, silence]))
    return path


def fake_media_args(microphone: Path) -> tuple[str, ...]:
    """Chromium flags: grant the microphone without asking and play ``microphone`` into it."""
    return (
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    )


@asynccontextmanager
async def chromium(extra_args: Sequence[str] = ()) -> AsyncIterator[Browser]:
    """Headless Debian Chromium; fails (not skips) when it or the console build is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    if not WEB_DIST.exists():
        pytest.fail("web/dist is missing: run 'cd web && npm ci && npm run build'")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        yield browser
        await browser.close()


class HasConsole(Protocol):
    """A running stack: ``LocalStack``, or ``stimm dev`` as a user runs it."""

    @property
    def control_plane_url(self) -> str: ...


@asynccontextmanager
async def console_page(
    browser: Browser, stack: HasConsole, last_shot: Path, *, ignore_https_errors: bool = False
) -> AsyncIterator[Page]:
    """A page on the stack's console; screenshots where the test stopped, pass or fail, and
    fails the test on any uncaught error in the page. ``ignore_https_errors`` accepts a
    self-signed certificate, as a user does once in the browser's warning."""
    context = await browser.new_context(
        base_url=stack.control_plane_url,
        viewport={"width": 1440, "height": 900},
        ignore_https_errors=ignore_https_errors,
    )
    page = await context.new_page()
    page.set_default_timeout(20_000)
    crashes: list[str] = []
    page.on("pageerror", lambda e: crashes.append(f"{e.name}: {e.message}\n{e.stack}"))
    yield page
    await page.screenshot(path=last_shot, full_page=True)
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
