"""End-to-end fixtures beyond the shared ``stack``: a second stack with telephony, and callers
that always leave their rooms."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from stimm.stack import LocalStack, StackOptions
from stimm.stack.postgres import drop_database, ensure_database
from stimm.stack.process import free_udp_port
from testkit.caller import Caller
from testkit.fakes.openai_server import FakeOpenAIServer
from testkit.sipp import sipp_binary
from tests.e2e.console import chromium, console_page
from tests.support.voicemail import AMD_RULES


@pytest.fixture(autouse=True)
async def callers_leave() -> AsyncIterator[None]:
    """A caller a failed test left in its room would keep an agent busy and fill the worker
    slots the next tests need, and a room still connected when the interpreter exits can
    abort it from livekit's native code."""
    yield
    await asyncio.gather(*(c.leave() for c in list(Caller.connected)), return_exceptions=True)


@pytest.fixture(scope="session")
def sip_stack(run_dir: Path) -> Iterator[LocalStack]:
    """The platform with livekit-sip on loopback; outbound calls go to
    ``options.sip_outbound_address``, where a test runs a SIPp callee."""
    if sipp_binary() is None:
        pytest.fail("SIPp is not installed (apt-get install sip-tester)")
    db_name = f"stimm_e2e_sip_{os.getpid()}"
    database_url = ensure_database(db_name, fresh=True)
    s = LocalStack(
        StackOptions(
            run_dir=run_dir / "sip-stack",
            database_url=database_url,
            workers=1,
            sip=True,
            sip_outbound_address=f"127.0.0.1:{free_udp_port()}",
            # short enough for a campaign test: an unanswered dial gives up after 5 s, and a
            # killed control plane's campaign rows are taken over 5 s after its last renewal
            env={"STIMM_SIP_RINGING_TIMEOUT": "5", "STIMM_CAMPAIGN_LEASE_S": "5"},
        )
    )
    s.start()
    yield s
    s.stop()
    drop_database(db_name)


@pytest.fixture(scope="module")
async def amd_llm() -> AsyncIterator[str]:
    """An agent's LLM that classifies callees for livekit's answering-machine detection (a
    ``save_prediction`` tool call: a greeting that mentions a message is a machine) and answers
    a person."""
    async with FakeOpenAIServer(AMD_RULES, default_reply="Glad to reach you.") as server:
        yield server.base_url


@pytest.fixture
async def page(
    stack: LocalStack, run_dir: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A console page in Chromium (no microphone) on the shared stack."""
    async with (
        chromium() as browser,
        console_page(browser, stack, run_dir / f"last-{request.node.name}.png") as p,
    ):
        yield p
