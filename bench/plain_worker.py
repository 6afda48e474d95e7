"""A plain livekit-agents worker, for side-by-side latency and capacity.

``--providers instant`` (default): no Stimm code: livekit's own ``deepgram.STT``, ``openai.LLM``
and ``elevenlabs.TTS`` pointed at the bench's local fakes (canned transcript, scripted reply,
cached speech), Silero VAD, VAD end of turn with livekit's default endpointing (0.5 s), as anyone
would write it from the docs. ``--providers offline``: the same offline engines as Stimm's default
agent (``worker/providers``: Whisper, Piper) loaded in every job process by its prewarm, as
livekit's docs load models.

    python bench/plain_worker.py --agent-name plain-instant --llm-url URL --speech-url URL
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stimm.stack import LocalStack

GREETING = "Hello, how can I help?"
INSTRUCTIONS = "Answer in one short sentence."


async def open_room(stack: LocalStack, agent_name: str) -> tuple[str, str]:
    """A room with an explicit dispatch of ``agent_name``, as livekit's docs do it: the LiveKit
    URL and a caller's token for it."""
    from livekit import api

    o = stack.options
    room = f"{agent_name}-{time.monotonic_ns()}"
    url = f"http://127.0.0.1:{o.livekit_port}"
    async with api.LiveKitAPI(url, o.api_key, o.api_secret) as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=60))
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=agent_name, room=room)
        )
    token = (
        api.AccessToken(o.api_key, o.api_secret)
        .with_identity(f"caller-{room}")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )
    return stack.livekit_url, token


def offline() -> bool:
    return os.environ.get("BENCH_PROVIDERS") == "offline"


def prewarm(proc: Any) -> None:
    from livekit.plugins import silero

    proc.userdata["vad"] = silero.VAD.load()
    if offline():
        from worker.providers import PiperTTS, WhisperSTT

        WhisperSTT.load()
        PiperTTS.load()


async def entrypoint(ctx: Any) -> None:
    from livekit.agents import Agent, AgentSession
    from livekit.plugins import deepgram, elevenlabs, openai

    stt: Any
    tts: Any
    if offline():
        from worker.providers import PiperTTS, WhisperSTT

        stt, tts = WhisperSTT(), PiperTTS()
    else:
        speech = os.environ["BENCH_SPEECH_URL"]
        stt = deepgram.STT(base_url=f"{speech}/v1/listen", api_key="bench")
        tts = elevenlabs.TTS(base_url=f"{speech}/v1", api_key="bench", encoding="pcm_24000")
    session: AgentSession[None] = AgentSession(
        vad=ctx.proc.userdata["vad"],
        stt=stt,
        llm=openai.LLM(model="scripted", base_url=os.environ["BENCH_LLM_URL"], api_key="bench"),
        tts=tts,
        # offline-safe choices, as Stimm makes them: VAD end of turn, VAD interruptions
        turn_handling={"turn_detection": "vad", "interruption": {"mode": "vad"}},
    )
    await session.start(agent=Agent(instructions=INSTRUCTIONS), room=ctx.room)
    session.say(GREETING)


def main() -> None:
    from livekit.agents import AgentServer, cli

    from stimm.stack.process import free_port

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent-name", required=True)
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--speech-url", default="")
    parser.add_argument("--providers", choices=("instant", "offline"), default="instant")
    parser.add_argument(
        "--idle", type=int, default=None, help="prewarmed job processes (livekit's default)"
    )
    args = parser.parse_args()
    os.environ["BENCH_LLM_URL"] = args.llm_url
    os.environ["BENCH_SPEECH_URL"] = args.speech_url
    os.environ["BENCH_PROVIDERS"] = args.providers
    # the offline engines are imported from this repository, by job processes too
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    # Stimm's worker allows a job process 60 s to start and admits jobs by its own session count;
    # livekit's defaults (10 s, and no jobs while the machine's CPU is over 70 %) refuse them on
    # a busy 2-core machine before a turn is measured, and start-up is not what this compares
    server = AgentServer(
        setup_fnc=prewarm,
        port=free_port(),
        initialize_process_timeout=60.0,
        load_threshold=math.inf,
        **({} if args.idle is None else {"num_idle_processes": args.idle}),
    )
    server.rtc_session(entrypoint, agent_name=args.agent_name)
    sys.argv = ["plain-worker", "start"]
    cli.run_app(server)


if __name__ == "__main__":
    main()
