"""Agent behaviour built from config alone, run with livekit's ``AgentSession.run`` harness
against the real OpenAI plugin talking to scripted local LLM servers: failover, tools, RAG."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from livekit.agents import AgentSession, vad
from livekit.agents.voice.events import UserInputTranscribedEvent
from livekit.agents.voice.run_result import RunResult
from livekit.plugins import silero

from stimm.egress import LOOPBACK, EgressPolicy, egress_client
from stimm.schema import AgentConfig
from testkit.fakes.mcp_server import PLANETARIUM_HOURS, FakeMcpServer
from testkit.fakes.openai_server import TOOL_RESULT_PREFIX, FakeOpenAIServer
from worker.control_plane_client import ControlPlaneClient
from worker.mcp_tools import mcp_tools, unavailable_notice
from worker.recorder import APOLOGY, SessionRecorder
from worker.session import StimmAgent, build_agent, build_agent_session

pytestmark = pytest.mark.unit

QUESTION = "When is the museum open?"
ANSWER = "The museum is open every Sunday afternoon."


@pytest.fixture(scope="module")
def vad_model() -> vad.VAD:
    return silero.VAD.load()


def config(llm_urls: list[str], **extra: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "name": "Museum guide",
            "instructions": "You answer questions about the museum.",
            "llm": [
                {"provider": "openai", "model": "scripted", "options": {"base_url": url}}
                for url in llm_urls
            ],
            **extra,
        }
    )


class ControlPlaneStub:
    """The control plane's worker API, behind an ``httpx.MockTransport``."""

    def __init__(self, chunks: list[dict[str, Any]] | None = None) -> None:
        self.chunks = chunks or []
        self.queries: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.turns: list[dict[str, Any]] = []
        self.client = ControlPlaneClient(
            "http://control-plane", "token", transport=httpx.MockTransport(self._handle)
        )

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        if request.url.path.endswith("/query"):
            self.queries.append(body["query"])
            return httpx.Response(200, json={"chunks": self.chunks, "retrieval_ms": 3.0})
        if request.url.path.endswith("/events"):
            self.events.append(body)
        elif request.url.path.endswith("/turns"):
            self.turns.append(body)
        return httpx.Response(204)


async def run_turn(
    cfg: AgentConfig,
    vad_model: vad.VAD,
    text: str,
    *,
    stub: ControlPlaneStub | None = None,
    before: Callable[[AgentSession[None], StimmAgent], None] | None = None,
    http: httpx.AsyncClient | None = None,
) -> tuple[RunResult[None], AgentSession[None], StimmAgent]:
    stub = stub or ControlPlaneStub()
    built = build_agent_session(cfg, vad_model=vad_model)
    http = http or httpx.AsyncClient()
    agent = build_agent(cfg, http=http, control_plane=stub.client)
    session = built.agent_session
    await session.start(agent)
    if before is not None:
        before(session, agent)
    result: RunResult[None] = await asyncio.wait_for(session.run(user_input=text), timeout=30)
    return result, session, agent


# --- failover ----------------------------------------------------------------------------


@pytest.fixture
async def good_llm() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer([("museum", ANSWER)]) as server:
        yield server


@pytest.mark.parametrize("outage", ["fail", "hang"])
async def test_reply_arrives_through_the_second_llm_in_the_same_turn(
    vad_model: vad.VAD, good_llm: FakeOpenAIServer, outage: Any
) -> None:
    async with FakeOpenAIServer(mode=outage) as broken:
        cfg = config([broken.base_url, good_llm.base_url])
        result, session, _ = await run_turn(cfg, vad_model, QUESTION)
        reply = [e.item.text_content for e in result.events if e.type == "message"]
        await session.aclose()
    assert reply == [ANSWER]
    assert broken.requests, "the first LLM was never tried"
    assert good_llm.user_messages == [QUESTION]


async def test_all_llms_down_is_apologised_for_and_recorded(vad_model: vad.VAD) -> None:
    async with (
        FakeOpenAIServer(mode="fail") as first,
        FakeOpenAIServer(mode="fail") as second,
    ):
        cfg = config([first.base_url, second.base_url])
        stub = ControlPlaneStub()
        recorder = SessionRecorder(stub.client, "session-1")
        built = build_agent_session(cfg, vad_model=vad_model)
        session = built.agent_session
        recorder.attach(session)
        await session.start(build_agent(cfg, http=httpx.AsyncClient(), control_plane=stub.client))
        await asyncio.wait_for(session.run(user_input=QUESTION), timeout=30)
        await asyncio.sleep(0.5)
        said = [m.text_content for m in session.history.messages() if m.role == "assistant"]
        await session.aclose()
        await recorder.finished()
    assert APOLOGY in said
    assert recorder.failure is not None and "llm" in recorder.failure.lower()
    assert stub.events[-1]["status"] == "failed"


# --- tools -------------------------------------------------------------------------------


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    calls: list[dict[str, Any]] = []

    async def forecast(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response({"forecast": "sunny with a light breeze"})

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": "down"}, status=503)

    app = web.Application()
    app.router.add_post("/forecast", forecast)
    app.router.add_post("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", calls
    await runner.cleanup()


WEATHER_TOOL = {
    "type": "webhook",
    "name": "get_weather",
    "description": "The weather forecast for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


async def test_webhook_tool_result_reaches_the_llm_and_the_user(
    vad_model: vad.VAD, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, calls = webhook
    rules = [("weather", {"tool": "get_weather", "arguments": {"city": "Paris"}})]
    async with FakeOpenAIServer(rules) as server:
        cfg = config([server.base_url], tools=[{**WEATHER_TOOL, "url": f"{url}/forecast"}])
        # as a worker calls webhooks: through the egress policy, here allowing loopback
        http = egress_client(EgressPolicy.parse(LOOPBACK))
        result, session, _ = await run_turn(
            cfg, vad_model, "What's the weather in Paris?", http=http
        )
        result.expect.next_event().is_function_call(name="get_weather", arguments={"city": "Paris"})
        output = result.expect.next_event().is_function_call_output()
        assert "sunny" in output.event().item.output
        reply = result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        await session.aclose()
    assert calls == [{"city": "Paris"}]
    text = reply.event().item.text_content or ""
    assert text.startswith(TOOL_RESULT_PREFIX) and "sunny with a light breeze" in text


async def test_failing_webhook_is_a_spoken_fallback_not_silence(
    vad_model: vad.VAD, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, _ = webhook
    rules = [("weather", {"tool": "get_weather", "arguments": {"city": "Paris"}})]
    fallback = "Sorry, the weather service is not answering right now."
    tool = {**WEATHER_TOOL, "url": f"{url}/broken", "failure_message": fallback}
    async with FakeOpenAIServer(rules) as server:
        cfg = config([server.base_url], tools=[tool])
        result, session, _ = await run_turn(cfg, vad_model, "What's the weather in Paris?")
        await asyncio.sleep(0.2)
        said = [m.text_content for m in session.history.messages() if m.role == "assistant"]
        await session.aclose()
    result.expect.contains_function_call(name="get_weather")
    assert fallback in said


async def test_mcp_server_tool_result_reaches_the_llm_and_the_user(vad_model: vad.VAD) -> None:
    rules = [("planetarium", {"tool": "planetarium_hours", "arguments": {"day": "Sunday"}})]
    async with FakeMcpServer(token="mcp-token") as tools, FakeOpenAIServer(rules) as server:
        mcp = {"type": "mcp", "name": "museum", "url": tools.url}
        cfg = config(
            [server.base_url], tools=[{**mcp, "headers": {"Authorization": "Bearer mcp-token"}}]
        )
        result, session, agent = await run_turn(cfg, vad_model, "When is the planetarium show?")
        assert unavailable_notice(agent.tool_servers) is None
        result.expect.next_event().is_function_call(
            name="planetarium_hours", arguments={"day": "Sunday"}
        )
        result.expect.next_event().is_function_call_output()
        reply = result.expect.next_event().is_message(role="assistant")
        await session.aclose()
    assert tools.calls == [{"day": "Sunday"}]
    text = reply.event().item.text_content or ""
    assert text.startswith(TOOL_RESULT_PREFIX) and PLANETARIUM_HOURS in text


async def test_unreachable_mcp_server_is_named_and_the_call_goes_on(
    vad_model: vad.VAD, good_llm: FakeOpenAIServer
) -> None:
    async with FakeMcpServer(token="right") as tools:
        cfg = config(
            [good_llm.base_url],
            tools=[
                {"type": "mcp", "name": "calendar", "url": "http://127.0.0.1:9/mcp"},
                {"type": "mcp", "name": "museum", "url": tools.url, "headers": {"X": "wrong"}},
            ],
        )
        result, session, agent = await run_turn(cfg, vad_model, QUESTION)
        notice = unavailable_notice(agent.tool_servers)
        reply = [e.item.text_content for e in result.events if e.type == "message"]
        await session.aclose()
    assert notice == "Sorry, my calendar and museum tools are not available right now."
    assert reply == [ANSWER]


def test_mcp_servers_the_egress_policy_refuses_are_not_contacted() -> None:
    cfg = config(
        ["http://127.0.0.1:9/v1"],
        tools=[{"type": "mcp", "name": "metadata", "url": "http://169.254.169.254/mcp"}],
    )
    servers = mcp_tools(cfg, EgressPolicy.parse("0.0.0.0/0"))
    assert [(s.name, s.server) for s in servers] == [("metadata", None)]
    assert unavailable_notice(servers) == "Sorry, my metadata tools are not available right now."


async def test_webhook_to_a_refused_address_is_never_requested_and_apologised_for(
    vad_model: vad.VAD, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, calls = webhook  # on loopback, which the default policy refuses
    rules = [("weather", {"tool": "get_weather", "arguments": {"city": "Paris"}})]
    fallback = "Sorry, the weather service is not answering right now."
    tool = {**WEATHER_TOOL, "url": f"{url}/forecast", "failure_message": fallback}
    async with FakeOpenAIServer(rules) as server:
        cfg = config([server.base_url], tools=[tool])
        http = egress_client(EgressPolicy())
        result, session, _ = await run_turn(
            cfg, vad_model, "What's the weather in Paris?", http=http
        )
        await asyncio.sleep(0.2)
        said = [m.text_content for m in session.history.messages() if m.role == "assistant"]
        await session.aclose()
    result.expect.contains_function_call(name="get_weather")
    assert fallback in said
    assert calls == []


async def test_end_call_ends_the_session(vad_model: vad.VAD) -> None:
    rules: list[tuple[str, Any]] = [("goodbye", {"tool": "end_call", "arguments": {}})]
    async with FakeOpenAIServer(rules) as server:
        cfg = config([server.base_url], tools=[{"type": "end_call"}])
        closed = asyncio.Event()

        def watch(session: AgentSession[None], agent: StimmAgent) -> None:
            session.on("close", lambda ev: closed.set())

        result, session, _ = await run_turn(cfg, vad_model, "That's all, goodbye!", before=watch)
        result.expect.contains_function_call(name="end_call")
        await asyncio.wait_for(closed.wait(), timeout=10)
        await session.aclose()


async def test_without_end_call_the_session_stays_open(vad_model: vad.VAD) -> None:
    async with FakeOpenAIServer([("goodbye", "Goodbye!")]) as server:
        cfg = config([server.base_url])
        closed = asyncio.Event()

        def watch(session: AgentSession[None], agent: StimmAgent) -> None:
            session.on("close", lambda ev: closed.set())

        _, session, _ = await run_turn(cfg, vad_model, "That's all, goodbye!", before=watch)
        await asyncio.sleep(1.0)
        assert not closed.is_set()
        await session.aclose()


# --- RAG ---------------------------------------------------------------------------------

FACT = "The museum's rooftop garden opens at seven in the evening on Fridays."


async def test_retrieved_chunk_reaches_the_llm(vad_model: vad.VAD) -> None:
    stub = ControlPlaneStub(
        [{"document_id": "d1", "document_name": "hours.txt", "text": FACT, "score": 0.8}]
    )
    async with FakeOpenAIServer([], "Context given: {context}") as server:
        cfg = config([server.base_url], knowledge_base_id="kb-1")
        result, session, agent = await run_turn(
            cfg, vad_model, "When does the rooftop garden open?", stub=stub
        )
        reply = result.expect.next_event().is_message(role="assistant")
        waited = agent.pop_retrieval_time()
        await session.aclose()
    assert FACT in (reply.event().item.text_content or "")
    assert stub.queries == ["When does the rooftop garden open?"]
    assert waited is not None and waited >= 0
    # the chunk was context for that turn only, not stored in the conversation
    assert all(FACT not in (m.text_content or "") for m in session.history.messages()[:-1])


async def test_low_scoring_chunks_are_left_out(vad_model: vad.VAD) -> None:
    stub = ControlPlaneStub(
        [{"document_id": "d1", "document_name": "hours.txt", "text": FACT, "score": 0.1}]
    )
    async with FakeOpenAIServer([], "Context given: {context}") as server:
        cfg = config([server.base_url], knowledge_base_id="kb-1", rag={"min_score": 0.5})
        result, session, _ = await run_turn(cfg, vad_model, "When is the garden open?", stub=stub)
        reply = result.expect.next_event().is_message(role="assistant")
        await session.aclose()
    assert FACT not in (reply.event().item.text_content or "")


@pytest.mark.parametrize(
    ("transcripts", "speculated"),
    [
        (  # a streaming STT: interim results, then the final
            [
                ("When does the", False),
                ("When does the rooftop garden", False),
                ("When does the rooftop garden open?", True),
            ],
            ["When does the", "When does the rooftop garden", "When does the rooftop garden open?"],
        ),
        (  # a pause mid-sentence: two final segments that make one user message
            [("When does the rooftop", True), ("garden open?", True)],
            ["When does the rooftop", "When does the rooftop garden open?"],
        ),
    ],
)
async def test_speculative_retrieval_is_reused_when_the_user_stops(
    vad_model: vad.VAD, transcripts: list[tuple[str, bool]], speculated: list[str]
) -> None:
    stub = ControlPlaneStub(
        [{"document_id": "d1", "document_name": "hours.txt", "text": FACT, "score": 0.8}]
    )
    async with FakeOpenAIServer([], "Context given: {context}") as server:
        cfg = config([server.base_url], knowledge_base_id="kb-1")

        def hear(session: AgentSession[None], agent: StimmAgent) -> None:
            for text, final in transcripts:
                session.emit(
                    "user_input_transcribed",
                    UserInputTranscribedEvent(transcript=text, is_final=final),
                )

        result, session, _ = await run_turn(
            cfg, vad_model, "When does the rooftop garden open?", stub=stub, before=hear
        )
        reply = result.expect.next_event().is_message(role="assistant")
        await session.aclose()
    assert FACT in (reply.event().item.text_content or "")
    # the whole utterance was already being retrieved: no new query when the turn ended
    assert stub.queries == speculated


async def test_without_speculation_retrieval_waits_for_the_turn(vad_model: vad.VAD) -> None:
    stub = ControlPlaneStub(
        [{"document_id": "d1", "document_name": "hours.txt", "text": FACT, "score": 0.8}]
    )
    async with FakeOpenAIServer([], "Context given: {context}") as server:
        cfg = config([server.base_url], knowledge_base_id="kb-1", rag={"speculative": False})

        def hear(session: AgentSession[None], agent: StimmAgent) -> None:
            session.emit(
                "user_input_transcribed",
                UserInputTranscribedEvent(transcript="When does the", is_final=False),
            )

        result, session, _ = await run_turn(
            cfg, vad_model, "When does the rooftop garden open?", stub=stub, before=hear
        )
        result.expect.next_event().is_message(role="assistant")
        await session.aclose()
    assert stub.queries == ["When does the rooftop garden open?"]


async def test_unreachable_knowledge_base_still_answers(vad_model: vad.VAD) -> None:
    client = ControlPlaneClient(
        "http://control-plane",
        "token",
        transport=httpx.MockTransport(lambda r: httpx.Response(503)),
    )
    stub = ControlPlaneStub()
    stub.client = client
    async with FakeOpenAIServer([("garden", ANSWER)]) as server:
        cfg = config([server.base_url], knowledge_base_id="kb-1")
        result, session, _ = await run_turn(cfg, vad_model, "When is the garden open?", stub=stub)
        reply = result.expect.next_event().is_message(role="assistant")
        await session.aclose()
    assert reply.event().item.text_content == ANSWER


async def test_a_job_that_loses_the_claim_is_told_why() -> None:
    from stimm.schema import SessionClaim
    from worker.control_plane_client import ControlPlaneError, SessionTakenError

    answers = {
        "s-taken": httpx.Response(409, json={"detail": "Session s-taken is already answered"}),
        "s-mine": httpx.Response(200, json={}),
        "s-down": httpx.Response(503, text="unavailable"),
    }
    client = ControlPlaneClient(
        "http://control-plane",
        "token",
        wait_s=0.5,
        transport=httpx.MockTransport(lambda req: answers[req.url.path.split("/")[-2]]),
    )
    claim = SessionClaim(job_id="AJ_1", worker_id="AW_1")
    await client.claim_session("s-mine", claim)
    with pytest.raises(SessionTakenError, match="already answered"):
        await client.claim_session("s-taken", claim)
    with pytest.raises(ControlPlaneError, match="HTTP 503"):
        await client.claim_session("s-down", claim)
    await client.aclose()


def claim_and_load_client(
    claim: Callable[[], Any], agent: Callable[[], Any]
) -> tuple[ControlPlaneClient, list[str]]:
    """A control plane whose claim and agent answers are the given coroutines' results."""
    sent: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        is_claim = request.url.path.endswith("/claim")
        sent.append("claim" if is_claim else "agent")
        result: httpx.Response = await (claim() if is_claim else agent())
        return result

    client = ControlPlaneClient(
        "http://control-plane", "token", wait_s=0.5, transport=httpx.MockTransport(handle)
    )
    return client, sent


async def test_a_job_asks_for_its_agent_while_its_claim_is_answered() -> None:
    from types import SimpleNamespace

    from stimm.schema import JobMetadata
    from worker.main import claim_and_load

    agent_asked = asyncio.Event()
    claim_waited_for_agent: list[bool] = []
    agent = {**config(["http://llm.invalid/v1"]).model_dump(mode="json"), "id": "agent-1"}

    async def claim() -> httpx.Response:
        # answered once the agent's config was asked for: one round trip, not two (asked
        # only after the claim, the config would wait out this second)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agent_asked.wait(), 1)
        claim_waited_for_agent.append(agent_asked.is_set())
        return httpx.Response(200, json={})

    async def load() -> httpx.Response:
        agent_asked.set()
        return httpx.Response(200, json=agent)

    client, sent = claim_and_load_client(claim, load)
    ctx: Any = SimpleNamespace(job=SimpleNamespace(id="AJ_1"), worker_id="AW_1")
    meta = JobMetadata(agent_id="agent-1", session_id="s-1")
    loaded = await claim_and_load(ctx, meta, "s-1", client)
    await client.aclose()
    assert loaded.id == "agent-1"
    assert sorted(sent) == ["agent", "claim"]
    assert claim_waited_for_agent == [True]


async def test_a_job_that_loses_the_claim_does_not_fail_the_session_its_agent_cannot_load() -> None:
    from types import SimpleNamespace

    from stimm.schema import JobMetadata
    from worker.main import LeaveRoom, claim_and_load

    async def taken() -> httpx.Response:
        await asyncio.sleep(0.05)  # the agent's 404 is in first
        return httpx.Response(409, json={"detail": "Session s-1 is already answered"})

    async def missing() -> httpx.Response:
        return httpx.Response(404, json={"detail": "no such agent"})

    client, _ = claim_and_load_client(taken, missing)
    ctx: Any = SimpleNamespace(job=SimpleNamespace(id="AJ_1"), worker_id="AW_1")
    meta = JobMetadata(agent_id="agent-1", session_id="s-1")
    with pytest.raises(LeaveRoom) as left:
        await claim_and_load(ctx, meta, "s-1", client)
    await client.aclose()
    # the other job answers the session: this one leaves without recording a failure
    assert left.value.reason == "session answered by another job"
    assert left.value.failure is None


async def test_a_job_waits_for_a_restarting_control_plane_to_load_its_agent() -> None:
    from worker.control_plane_client import ControlPlaneError

    calls: list[str] = []
    agent = {**config(["http://llm.invalid/v1"]).model_dump(mode="json"), "id": "agent-1"}

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if len(calls) == 2:
            return httpx.Response(503, json={"detail": "The database is unreachable"})
        return httpx.Response(200, json=agent)

    client = ControlPlaneClient("http://cp", "token", transport=httpx.MockTransport(handle))
    loaded = await client.get_agent("agent-1")
    assert loaded.id == agent["id"] and len(calls) == 3
    gone = ControlPlaneClient(
        "http://cp",
        "token",
        wait_s=0.3,
        transport=httpx.MockTransport(lambda r: httpx.Response(502, text="bad gateway")),
    )
    with pytest.raises(ControlPlaneError, match="HTTP 502"):
        await gone.get_agent("agent-1")
    await client.aclose()
    await gone.aclose()
