"""The Stimm agent worker: registers with LiveKit and runs one voice session per job."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile

from livekit.agents import AgentServer, JobContext, JobProcess
from livekit.plugins import silero
from pydantic import ValidationError

from stimm.egress import egress_client
from stimm.schema import AGENT_NAME, JobMetadata, SessionClaim, SessionEvent
from worker import pool, telephony
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError, SessionTakenError
from worker.mcp_tools import unavailable_notice
from worker.outbox import flush_grace_s
from worker.providers import PiperTTS, WhisperSTT
from worker.recorder import SessionRecorder
from worker.recording import record_options, upload_recording
from worker.session import build_agent, build_session
from worker.turn_taking import load_turn_detector

logger = logging.getLogger("stimm.worker")


VAD_MIN_SILENCE = 0.25
"""Seconds of silence after which Silero reports the end of speech. The turn itself ends after
each agent's ``min_endpointing_delay`` (0.5 s by default), counted by livekit from the last
speech; a VAD that waited its default 0.55 s made every turn wait for it instead."""


def prewarm(proc: JobProcess) -> None:
    """Load the offline models once per job process, before any job arrives."""
    proc.userdata["vad"] = silero.VAD.load(min_silence_duration=VAD_MIN_SILENCE)
    proc.userdata["turn_detector"] = load_turn_detector()
    WhisperSTT.load()
    PiperTTS.load()


def _prometheus_options() -> tuple[int | None, str | None]:
    """``/metrics`` on ``STIMM_WORKER_PROMETHEUS_PORT``, counting job processes too."""
    port = os.environ.get("STIMM_WORKER_PROMETHEUS_PORT")
    if not port:
        return None, None
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix="stimm-prometheus-"
    )
    return int(port), multiproc_dir


def create_server(*, health_port: int | None = None) -> AgentServer:
    """The worker's ``AgentServer`` with its single RTC entrypoint."""
    prometheus_port, prometheus_dir = _prometheus_options()
    # --- worker pool (worker/pool.py): load, drain, status endpoints, heartbeats ---
    prometheus_dir = pool.ensure_multiproc_dir(prometheus_dir)
    member = pool.PoolMember(pool.PoolOptions.from_env(), multiproc_dir=prometheus_dir)
    # --- end worker pool ---
    server = AgentServer(
        setup_fnc=prewarm,
        port=health_port if health_port is not None else 8081,
        initialize_process_timeout=60.0,
        # a job's end waits for the turns a down control plane has not taken yet
        shutdown_process_timeout=flush_grace_s() + 10.0,
        prometheus_port=prometheus_port,
        prometheus_multiproc_dir=prometheus_dir,
        **member.server_options(),  # worker pool
    )
    member.attach(server)  # worker pool
    server.rtc_session(entrypoint, agent_name=AGENT_NAME, on_request=member.on_request)  # pool
    return server


async def entrypoint(ctx: JobContext) -> None:
    """Run one dispatched session: load the agent, join, greet, converse, record."""
    try:
        meta = JobMetadata.model_validate_json(ctx.job.metadata or "{}")
    except ValidationError:
        meta = None
    if meta is None or (meta.session_id is None and meta.channel != "phone"):
        logger.error("job %s has no valid Stimm metadata; leaving the room", ctx.job.id)
        ctx.shutdown(reason="invalid job metadata")
        return
    # --- telephony (worker/telephony.py): wait for the phone leg, register dial-in calls ---
    phone_call: telephony.PhoneCall | None = None
    if meta.channel == "phone":
        try:
            phone_call = await telephony.join_call(ctx, meta)
        except telephony.CallSetupError as e:
            logger.error("job %s: %s", ctx.job.id, e)
            ctx.shutdown(reason=str(e))
            return
    session_id = phone_call.session_id if phone_call else meta.session_id
    assert session_id is not None
    # --- end telephony ---

    client = ControlPlaneClient()
    try:
        # a re-dispatch can race a slow worker that did take the job: only one may answer
        await client.claim_session(
            session_id,
            SessionClaim(job_id=ctx.job.id, worker_id=ctx.worker_id, dispatch=meta.dispatch),
        )
    except SessionTakenError as e:
        logger.warning("job %s leaves the room: %s", ctx.job.id, e)
        await client.aclose()
        ctx.shutdown(reason="session answered by another job")
        return
    except ControlPlaneError as e:  # loading the agent below says whether it is reachable
        logger.warning("session %s: claim not recorded: %s", session_id, e)
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
        built = build_session(
            config,
            vad_model=ctx.proc.userdata["vad"],
            turn_detector=ctx.proc.userdata.get("turn_detector"),
            secrets=config.secrets,
        )
    except ValueError as e:  # unknown provider, missing key, bad option
        logger.error("session %s: agent %s cannot be built: %s", session_id, meta.agent_id, e)
        await client.post_event(
            session_id, SessionEvent(status="failed", reason=f"agent not built: {e}")
        )
        await client.aclose()
        ctx.shutdown(reason="agent not built")
        return
    session = built.session
    webhooks = egress_client()  # only where STIMM_EGRESS_ALLOW lets agents' webhooks go
    agent = build_agent(config, http=webhooks, control_plane=client)
    recorder = SessionRecorder(client, session_id, retrieval_time=agent.pop_retrieval_time)
    recorder.attach(session)
    if phone_call is not None:  # telephony: keypad digits, hang-up ends the job
        telephony.attach(ctx, session, phone_call)

    async def on_shutdown(reason: str) -> None:
        # one callback, so the outcome is posted before the client closes
        await recorder.finished()
        if config.recording.enabled and not recorder.abandoned:
            await upload_recording(ctx, session, client, session_id)
        await webhooks.aclose()
        await client.aclose()

    ctx.add_shutdown_callback(on_shutdown)

    await session.start(agent=agent, room=ctx.room, record=record_options(config.recording))
    await recorder.started(turn_detection=built.turn_detection, worker_id=ctx.worker_id)
    logger.info("session %s started for agent %s", session_id, meta.agent_id)
    if config.greeting:
        session.say(config.greeting, allow_interruptions=True)
    if notice := unavailable_notice(agent.tool_servers):
        logger.warning("session %s: %s", session_id, notice)
        session.say(notice, allow_interruptions=True)
    # a phone caller is in the room already; a web caller may never come
    if phone_call is None and not await caller_joined(ctx, config.turn_taking.no_show_timeout_s):
        logger.info("session %s: %s; leaving the room", session_id, NO_SHOW)
        recorder.abandon(NO_SHOW)
        ctx.shutdown(reason=NO_SHOW)


NO_SHOW = "the caller never joined"


async def caller_joined(ctx: JobContext, timeout: float) -> bool:
    """Whether a caller (any participant but an agent) is in the room within ``timeout`` s."""
    try:
        await asyncio.wait_for(ctx.wait_for_participant(), timeout)
    except TimeoutError:
        return False
    return True
