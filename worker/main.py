"""The Stimm agent worker: registers with LiveKit and runs one voice session per job."""

from __future__ import annotations

import logging
import os

from livekit.agents import AgentServer, JobContext, JobProcess
from livekit.plugins import silero
from pydantic import ValidationError

from stimm.schema import AGENT_NAME, JobMetadata, SessionEvent
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError
from worker.load import LOAD_THRESHOLD, SessionLoad
from worker.providers import PiperTTS, WhisperSTT
from worker.recorder import SessionRecorder
from worker.session import StimmAgent, build_session

logger = logging.getLogger("stimm.worker")


def prewarm(proc: JobProcess) -> None:
    """Load the offline models once per job process, before any job arrives."""
    proc.userdata["vad"] = silero.VAD.load()
    WhisperSTT.load()
    PiperTTS.load()


def create_server(*, health_port: int | None = None) -> AgentServer:
    """The worker's ``AgentServer`` with its single RTC entrypoint."""
    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=SessionLoad(int(os.environ.get("STIMM_WORKER_MAX_SESSIONS", "4"))),
        load_threshold=LOAD_THRESHOLD,
        num_idle_processes=int(os.environ.get("STIMM_WORKER_IDLE_PROCESSES", "1")),
        port=health_port if health_port is not None else 8081,
        initialize_process_timeout=60.0,
    )
    server.rtc_session(entrypoint, agent_name=AGENT_NAME)
    return server


async def entrypoint(ctx: JobContext) -> None:
    """Run one dispatched session: load the agent, join, greet, converse, record."""
    try:
        meta = JobMetadata.model_validate_json(ctx.job.metadata or "{}")
    except ValidationError:
        meta = None
    if meta is None or meta.session_id is None:
        logger.error("job %s has no valid Stimm metadata; leaving the room", ctx.job.id)
        ctx.shutdown(reason="invalid job metadata")
        return
    session_id = meta.session_id

    client = ControlPlaneClient()
    try:
        config = await client.get_agent(meta.agent_id)
    except (ControlPlaneError, ValidationError) as e:
        logger.error("session %s: agent %s cannot be loaded: %s", session_id, meta.agent_id, e)
        await client.post_event(
            session_id, SessionEvent(status="failed", reason=f"agent not loaded: {e}")
        )
        await client.aclose()
        ctx.shutdown(reason="agent not loaded")
        return

    try:
        session = build_session(config, vad_model=ctx.proc.userdata["vad"])
    except ValueError as e:  # unknown provider, missing key, bad option
        logger.error("session %s: agent %s cannot be built: %s", session_id, meta.agent_id, e)
        await client.post_event(
            session_id, SessionEvent(status="failed", reason=f"agent not built: {e}")
        )
        await client.aclose()
        ctx.shutdown(reason="agent not built")
        return
    recorder = SessionRecorder(client, session_id)
    recorder.attach(session)

    async def on_shutdown(reason: str) -> None:
        # one callback, so the outcome is posted before the client closes
        await recorder.finished()
        await client.aclose()

    ctx.add_shutdown_callback(on_shutdown)

    await session.start(agent=StimmAgent(config), room=ctx.room)
    await recorder.started()
    logger.info("session %s started for agent %s", session_id, meta.agent_id)
    if config.greeting:
        session.say(config.greeting, allow_interruptions=True)
