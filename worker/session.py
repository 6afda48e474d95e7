"""Build a livekit ``AgentSession`` and ``Agent`` from an agent's stored config."""

from __future__ import annotations

from typing import Any

from livekit.agents import Agent, AgentSession, llm, stt, tts, vad

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
    """An ``AgentSession`` with the configured STT, LLM and TTS plugins and Silero VAD.

    Several providers for one role become a livekit ``FallbackAdapter`` in the listed order.
    """
    stts = [build_stt(s, language=config.language) for s in config.stt]
    llms = [build_llm(s) for s in config.llm]
    ttss = [build_tts(s, voice=config.voice, language=config.language) for s in config.tts]
    return AgentSession(
        stt=stts[0] if len(stts) == 1 else stt.FallbackAdapter(stts, vad=vad_model),
        llm=llms[0] if len(llms) == 1 else llm.FallbackAdapter(llms),
        tts=ttss[0] if len(ttss) == 1 else tts.FallbackAdapter(ttss),
        vad=vad_model,
        turn_handling=turn_handling(config),  # type: ignore[arg-type]
    )
