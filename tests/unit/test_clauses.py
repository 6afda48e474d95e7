"""A reply's first clause is synthesized on its own, so the caller hears it while the rest of a
long first sentence is still being synthesized; the rest goes sentence by sentence."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import tts
from livekit.plugins import silero

from stimm.schema import AgentConfig
from worker.clauses import ClauseFirstTokenizer, first_clause_end
from worker.session import build_agent_session

pytestmark = pytest.mark.unit

REPLY = (
    "The current exhibition, which opened last spring, shows paintings from the early "
    "twentieth century. It closes in May, so come soon."
)


async def streamed_tokens(tokenizer: ClauseFirstTokenizer, pieces: list[str]) -> list[str]:
    """What a TTS is asked to say when an LLM streams ``pieces``, and when each is ready."""
    stream = tokenizer.stream()
    for piece in pieces:
        stream.push_text(piece)
    stream.end_input()
    return [data.token async for data in stream]


def llm_deltas(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def test_first_clause_of_a_streamed_reply_is_its_own_chunk() -> None:
    tokens = await streamed_tokens(ClauseFirstTokenizer(), llm_deltas(REPLY))
    assert tokens == [
        "The current exhibition,",
        "which opened last spring, shows paintings from the early twentieth century.",
        # only the first sentence is cut: later commas stay inside their sentence
        "It closes in May, so come soon.",
    ]


async def test_first_clause_is_ready_before_the_sentence_ends() -> None:
    stream = ClauseFirstTokenizer().stream()
    for piece in llm_deltas("The current exhibition, wh"):
        stream.push_text(piece)
    first = await asyncio.wait_for(stream.__anext__(), 1)
    assert first.token == "The current exhibition,"
    await stream.aclose()


@pytest.mark.parametrize(
    "reply",
    [
        "Yes, it is open today.",  # "Yes," is too short to stand alone
        "The museum has 1,000 paintings on show this year.",  # a number, not a clause
        "The museum is open every Sunday afternoon.",  # no clause boundary
    ],
)
async def test_short_clauses_and_numbers_are_not_cut(reply: str) -> None:
    assert await streamed_tokens(ClauseFirstTokenizer(), llm_deltas(reply)) == [reply]


async def test_every_reply_starts_a_new_first_clause() -> None:
    tokenizer = ClauseFirstTokenizer()
    for _ in range(2):
        tokens = await streamed_tokens(tokenizer, llm_deltas(REPLY))
        assert tokens[0] == "The current exhibition,"


def test_clause_boundary_needs_text_after_it() -> None:
    clause = "Yes, the current exhibition,"
    assert first_clause_end(clause + " ") is None
    assert first_clause_end(clause + " it") == len(clause)


def config(**turn_taking: bool) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "name": "Guide",
            "instructions": "Help.",
            "llm": [{"provider": "openai", "options": {"base_url": "http://127.0.0.1:9/v1"}}],
            "turn_taking": turn_taking,
        }
    )


async def test_offline_voice_speaks_the_first_clause_first() -> None:
    built = build_agent_session(config(), vad_model=silero.VAD.load())
    engine = built.agent_session.tts
    assert isinstance(engine, tts.StreamAdapter)
    assert isinstance(engine._sentence_tokenizer, ClauseFirstTokenizer)
    await built.agent_session.aclose()


async def test_agents_can_keep_whole_sentences() -> None:
    built = build_agent_session(config(early_first_clause=False), vad_model=silero.VAD.load())
    # livekit then wraps the voice with its own sentence tokenizer
    assert not built.agent_session.tts or not built.agent_session.tts.capabilities.streaming
    await built.agent_session.aclose()
