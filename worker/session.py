"""Build a livekit ``AgentSession`` and ``Agent`` from an agent's stored config."""

from __future__ import annotations

from typing import Any

from livekit.agents import Agent, AgentSession, vad

from stimm.schema import AgentConfig
from worker.providers import build_llm, build_stt, build_tts


class StimmAgent(Agent):
    """The conversational agent: instructions from config, no code per agent."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(instructions=config.instructions)
        self.config = config


def turn_handling(config: AgentConfig) -> dict[str, Any]:
    """Turn-taking options: VAD endpointing, VAD-based interruptions.

    ``interruption.mode`` is pinned to ``"vad"``: the ``"adaptive"`` mode calls a cloud model.
    """
    return {
        "turn_detection": "vad",
        "endpointing": {"min_delay": 0.5, "max_delay": 3.0},
        "interruption": {"enabled": True, "mode": "vad", "min_duration": 0.5},
        "preemptive_generation": {"enabled": True},
    }


def build_session(config: AgentConfig, *, vad_model: vad.VAD) -> AgentSession[None]:
    """An ``AgentSession`` with the configured STT, LLM and TTS plugins and Silero VAD."""
    return AgentSession(
        stt=build_stt(config.stt, language=config.language),
        llm=build_llm(config.llm),
        tts=build_tts(config.tts, voice=config.voice, language=config.language),
        vad=vad_model,
        turn_handling=turn_handling(config),  # type: ignore[arg-type]
    )
