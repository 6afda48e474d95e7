"""The embeddable widget in a real browser against the real stack: a publishable key made in
the console, its snippet pasted into a page served from another origin, a call through the
fake microphone with live captions; a page from an origin the key does not allow is refused,
and so is the allowed one once the key is revoked in the console."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

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
from tests.e2e.test_roundtrip import agent_body

pytestmark = pytest.mark.e2e

expect.set_options(timeout=20_000)


class Site:
    """A web server on a port of its own (so an origin of its own) serving one page."""

    def __init__(self) -> None:
        self.html = "<!doctype html><title>empty</title>"
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def page_with(self, snippet: str) -> None:
        self.html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Museum shop'
            f"</title></head><body><h1>Museum shop</h1>{snippet}</body></html>"
        )


@contextmanager
def site() -> Iterator[Site]:
    s = Site()
    thread = threading.Thread(target=s.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        s.server.shutdown()
        s.server.server_close()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose microphone asks when the museum is open."""
    async with chromium(fake_media_args(fake_microphone(tmp_path / "microphone.wav"))) as b:
        yield b


@pytest.fixture
async def console(
    browser: Browser, stack: LocalStack, run_dir: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    async with console_page(browser, stack, run_dir / f"last-{request.node.name}.png") as p:
        yield p


async def open_site(browser: Browser, origin: str) -> Page:
    page = await browser.new_page()
    page.set_default_timeout(20_000)
    await page.goto(origin + "/")
    return page


async def test_a_site_embeds_the_widget_talks_with_captions_and_other_sites_are_refused(
    console: Page, browser: Browser, stack: LocalStack, fake_llm_url: str
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        body = agent_body(fake_llm_url, name="Shop guide")
        agent = (await http.post("/api/agents", json=body)).json()

        with site() as shop, site() as elsewhere:
            # --- a publishable key for the shop's origin, made in the console ----------------
            await sign_in(console, stack.api_key)
            await nav(console, "Publishable keys")
            await console.get_by_role("button", name="New publishable key").click()
            await console.get_by_label("Name").fill("Museum shop")
            await console.get_by_role("checkbox", name="Shop guide").check()
            await console.get_by_label("Allowed sites").fill(f"{shop.origin}/some/page")
            await console.get_by_role("button", name="Create key").click()
            await expect(console.locator(".field-error")).to_contain_text("more than an origin")
            await console.get_by_label("Allowed sites").fill(shop.origin)
            await console.get_by_role("button", name="Create key").click()
            snippet_box = console.get_by_test_id("widget-snippet")
            await expect(snippet_box).to_contain_text(f"{stack.control_plane_url}/widget.js")
            snippet = (await snippet_box.inner_text()).strip()
            assert re.fullmatch(
                r'<script src="[^"]+/widget\.js" data-key="stimm_pk_[^"]+" async>'
                r"</script>",
                snippet,
            ), snippet
            await shot(console, "12-publishable-key-snippet")
            await console.get_by_role("button", name="Done").click()

            # --- the shop's page: talk button, greeting, the spoken question, the answer ----
            shop.page_with(snippet)
            elsewhere.page_with(snippet)
            page = await open_site(browser, shop.origin)
            crashes: list[str] = []
            page.on("pageerror", lambda e: crashes.append(f"{e.name}: {e.message}"))
            await page.get_by_role("button", name="Talk to us").click()
            captions = page.get_by_role("log", name="Captions")
            agent_says = captions.locator('[data-speaker="agent"]')
            user_says = captions.locator('[data-speaker="user"]')
            await expect(agent_says.first).to_contain_text("How can I help", timeout=90_000)
            await expect(user_says.filter(has_text=re.compile("museum", re.I)).first).to_be_visible(
                timeout=60_000
            )
            await expect(agent_says.filter(has_text="Sunday afternoon").first).to_be_visible(
                timeout=60_000
            )
            await shot(page, "13-widget-call")
            await page.get_by_role("button", name="Hang up").click()
            await expect(page.get_by_role("status")).to_have_text("Call ended")
            assert not crashes, crashes
            sessions = (await http.get("/api/sessions", params={"agent_id": agent["id"]})).json()
            assert sessions["count"] == 1

            # --- the same snippet on an origin the key does not list ------------------------
            other = await open_site(browser, elsewhere.origin)
            await other.get_by_role("button", name="Talk to us").click()
            await expect(other.get_by_role("alert")).to_contain_text(
                "not allowed to use this widget"
            )
            await shot(other, "14-widget-refused")
            sessions = (await http.get("/api/sessions", params={"agent_id": agent["id"]})).json()
            assert sessions["count"] == 1

            # --- revoked in the console: the shop's page can start no call either -----------
            row = console.get_by_test_id("publishable-key-row").filter(has_text="Museum shop")
            await row.get_by_role("button", name="Revoke").click()
            await console.get_by_role("button", name="Revoke key").click()
            await expect(row.locator(".badge")).to_have_text("Revoked")
            await page.reload()
            await page.get_by_role("button", name="Talk to us").click()
            await expect(page.get_by_role("alert")).to_contain_text("could not start")
            sessions = (await http.get("/api/sessions", params={"agent_id": agent["id"]})).json()
            assert sessions["count"] == 1
