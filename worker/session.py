"""Build a livekit ``AgentSession`` and ``Agent`` from an agent's stored config."""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from livekit import rtc
from livekit.agents import (
    Agent,
    AgentSession,
    APIConnectOptions,
    FlushSentinel,
    ModelSettings,
    llm,
    stt,
    tts,
    vad,
)
from livekit.agents.inference import TurnDetector
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import UserInputTranscribedEvent

from stimm.schema import AgentConfig, ProviderSpec
from worker.audio_trim import trim_lead_in
from worker.clauses import ClauseFirstTokenizer
from worker.control_plane_client import ControlPlaneClient
from worker.mcp_tools import McpTools, mcp_tools
from worker.providers import build_llm, build_stt, build_tts
from worker.providers.pause_stt import PauseEndpointingAdapter
from worker.rag import KnowledgeRetriever, context_message
from worker.tools import build_tools
from worker.turn_taking import TurnDetection, turn_handling
from worker.warm_transfer import TransferLine

LLM_ATTEMPT_TIMEOUT = 5.0
"""Seconds an LLM may take to start answering (and between chunks) before the next provider
in the list is tried; ``options.timeout_s`` on an LLM spec raises it (slow local models)."""
TTS_RETRIES = 1
"""Retries of one TTS provider before the next one is tried."""


class StimmAgent(Agent):
    """The conversational agent: instructions, tools and knowledge from config, no code.

    Args:
        config: The agent config.
        tools: The function tools built from ``config.tools``.
        retriever: Retrieval from the agent's knowledge base, if it has one.
        mcp_servers: The agent's MCP servers; livekit connects them when the session starts.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        tools: Sequence[llm.Tool] = (),
        retriever: KnowledgeRetriever | None = None,
        mcp_servers: Sequence[McpTools] = (),
    ) -> None:
        super().__init__(
            instructions=config.instructions,
            tools=[*tools, *(s.toolset for s in mcp_servers if s.toolset is not None)],
        )
        self.config = config
        self.tool_servers = list(mcp_servers)
        self.retriever = retriever
        self._retrieval_for: str | None = None
        self._retrieval_s: float | None = None
        self._heard: list[str] = []

    async def on_enter(self) -> None:
        if self.retriever is not None and self.retriever.speculative:
            self.session.on("user_input_transcribed", self._on_transcript)

    async def on_exit(self) -> None:
        if self.retriever is not None:
            self.session.off("user_input_transcribed", self._on_transcript)
            self.retriever.cancel_all()

    def _on_transcript(self, ev: UserInputTranscribedEvent) -> None:
        # livekit joins a turn's final transcripts into the user message (an utterance with a
        # pause in it gives several), so speculate on what the message will say: the finals
        # so far plus the latest interim.
        text = ev.transcript.strip()
        if self.retriever is None or not text:
            return
        if ev.is_final:
            self._heard.append(text)
            self.retriever.speculate(" ".join(self._heard))
        else:
            self.retriever.speculate(" ".join([*self._heard, text]))

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        self._heard.clear()  # the next transcripts belong to the next turn

    def pop_retrieval_time(self) -> float | None:
        """Seconds the last turn waited for retrieval; ``None`` if it did not retrieve."""
        value, self._retrieval_s = self._retrieval_s, None
        return value

    async def llm_node(
        self,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        model_settings: ModelSettings,
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        # Retrieval happens here rather than in on_user_turn_completed so that a preemptive
        # reply (started on the preflight transcript) already carries the chunks and stays
        # valid when the turn is confirmed.
        if self.retriever is not None:
            chat_ctx = await self._with_knowledge(chat_ctx, self.retriever)
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            yield chunk

    async def tts_node(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame]:
        # the caller hears the first sound at once rather than the voice's lead-in silence
        async for frame in trim_lead_in(Agent.default.tts_node(self, text, model_settings)):
            yield frame

    async def _with_knowledge(
        self, chat_ctx: llm.ChatContext, retriever: KnowledgeRetriever
    ) -> llm.ChatContext:
        last_user = _last_user_index(chat_ctx)
        if last_user is None:
            return chat_ctx
        message = chat_ctx.items[last_user]
        assert isinstance(message, llm.ChatMessage)
        text = message.text_content or ""
        if not text.strip():
            return chat_ctx
        retrieval = await retriever.for_turn(text)
        if self._retrieval_for != text:  # a tool follow-up reuses it; count the wait once
            self._retrieval_for = text
            self._retrieval_s = retrieval.waited
        if not retrieval.chunks:
            return chat_ctx
        chat_ctx = chat_ctx.copy()
        chat_ctx.items.insert(
            last_user,
            llm.ChatMessage(role="system", content=[context_message(retrieval.chunks)]),
        )
        return chat_ctx


def _last_user_index(chat_ctx: llm.ChatContext) -> int | None:
    for i in range(len(chat_ctx.items) - 1, -1, -1):
        item = chat_ctx.items[i]
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return i
    return None


@dataclass
class BuiltAgentSession:
    """An ``AgentSession`` ready to start, and what it was built with.

    Attributes:
        agent_session: The ``AgentSession``.
        turn_detection: ``"model"`` or ``"vad"``, for the session record.
    """

    agent_session: AgentSession[None]
    turn_detection: TurnDetection


def _llm_timeout(specs: Sequence[ProviderSpec]) -> float:
    timeouts = [float(s.options.get("timeout_s") or LLM_ATTEMPT_TIMEOUT) for s in specs]
    return max(timeouts)


def _streaming(engine: stt.STT[Any], vad_model: vad.VAD) -> stt.STT[Any]:
    if engine.capabilities.streaming:
        return engine
    return PauseEndpointingAdapter(stt=engine, vad=vad_model)


def _clause_first(engine: tts.TTS[Any]) -> tts.TTS[Any]:
    if engine.capabilities.streaming:
        return engine
    return tts.StreamAdapter(tts=engine, sentence_tokenizer=ClauseFirstTokenizer())


def build_agent_session(
    config: AgentConfig,
    *,
    vad_model: vad.VAD,
    turn_detector: TurnDetector | None = None,
    secrets: Mapping[str, str] | None = None,
) -> BuiltAgentSession:
    """An ``AgentSession`` with the configured STT, LLM and TTS plugins and Silero VAD.

    Several providers for one role become a livekit ``FallbackAdapter`` in the listed order;
    an LLM that errors or does not start answering within its attempt timeout hands the same
    turn to the next one.

    Args:
        config: The agent config.
        vad_model: The process's loaded Silero VAD.
        turn_detector: The offline end-of-turn model, if loaded.
        secrets: Provider keys by environment-variable name.

    Raises:
        ValueError: An unknown provider, a missing key or a bad option.
    """
    # a non-streaming STT (offline Whisper) transcribes at each pause, not after the VAD's end
    stts = [
        _streaming(build_stt(s, language=config.language, secrets=secrets), vad_model)
        for s in config.stt
    ]
    ttss = [
        build_tts(s, voice=config.voice, language=config.language, secrets=secrets)
        for s in config.tts
    ]
    if config.turn_taking.early_first_clause:
        # a non-streaming TTS (Piper) starts on the reply's first clause, not its first sentence
        ttss = [_clause_first(t) for t in ttss]
    handling, detection = turn_handling(config.turn_taking, turn_detector)
    agent_session: AgentSession[None] = AgentSession(
        stt=stts[0] if len(stts) == 1 else stt.FallbackAdapter(stts, vad=vad_model),
        llm=build_agent_llm(config, secrets=secrets),
        tts=ttss[0] if len(ttss) == 1 else tts.FallbackAdapter(ttss, max_retry_per_tts=TTS_RETRIES),
        vad=vad_model,
        turn_handling=handling,
        conn_options=llm_connect_options(config),
    )
    return BuiltAgentSession(agent_session=agent_session, turn_detection=detection)


def build_agent_llm(
    config: AgentConfig, *, secrets: Mapping[str, str] | None = None
) -> llm.LLM[Any]:
    """The agent's LLM: its one provider, or a ``FallbackAdapter`` over the listed ones.

    Raises:
        ValueError: An unknown provider, a missing key or a bad option.
    """
    llms = [build_llm(s, secrets=secrets) for s in config.llm]
    if len(llms) == 1:
        return llms[0]
    return llm.FallbackAdapter(llms, attempt_timeout=_llm_timeout(config.llm), max_retry_per_llm=0)


def llm_connect_options(config: AgentConfig) -> SessionConnectOptions:
    """The session's LLM retries and timeout for the agent's LLM list."""
    return SessionConnectOptions(
        # the FallbackAdapter already tries every provider; retrying the whole list would
        # only delay the apology when all are down
        llm_conn_options=APIConnectOptions(
            max_retry=1 if len(config.llm) == 1 else 0,
            retry_interval=0.5,
            timeout=_llm_timeout(config.llm),
        ),
    )


def build_agent(
    config: AgentConfig,
    *,
    http: httpx.AsyncClient,
    control_plane: ControlPlaneClient | None,
    line: TransferLine | None = None,
) -> StimmAgent:
    """The agent for a config: its tools and, with a knowledge base, its retriever.

    Args:
        config: The agent config.
        http: The client webhook tools call through.
        control_plane: Where knowledge-base queries go; ``None`` leaves the knowledge base out
            (text-mode scenarios, which run without the worker's token).
        line: A phone session's call, which a warm transfer hands over.
    """
    retriever = (
        KnowledgeRetriever(control_plane, config.knowledge_base_id, config.rag)
        if config.knowledge_base_id and control_plane is not None
        else None
    )
    return StimmAgent(
        config,
        tools=build_tools(config, http, line),
        retriever=retriever,
        mcp_servers=mcp_tools(config),
    )
