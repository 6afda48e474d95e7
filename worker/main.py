"""The Stimm agent worker: registers with LiveKit and runs one voice session per job.

``entrypoint`` follows ARCHITECTURE.md's "one session", one named step each: read the job's
metadata, take the phone leg (phone jobs), claim the session, load the agent, build the
``AgentSession``, then join the room, report the session active and greet. A little over 300
lines: each step is a small function here, so the entrypoint reads top to bottom in one file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import tempfile
import time
from typing import Any

from livekit.agents import AgentServer, AgentSession, JobContext, JobProcess, room_io
from livekit.agents.inference import VAD as LocalVAD
from livekit.agents.inference import TurnDetector
from livekit.agents.utils import http_context
from pydantic import ValidationError

from stimm.egress import egress_client
from stimm.heap import freeze_startup_heap
from stimm.placeholders import fill
from stimm.schema import AGENT_NAME, JobMetadata, SessionClaim, SessionEvent, WorkerAgentConfig
from stimm.tls import provider_tls_context, tls_context
from worker import inference, pool, telephony, tracing, voicemail
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError, SessionTakenError
from worker.mcp_tools import unavailable_notice
from worker.outbox import flush_grace_s
from worker.providers.local_stt import WhisperRunner
from worker.providers.local_tts import PiperRunner
from worker.recorder import SessionRecorder
from worker.recording import record_options, upload_recording
from worker.session import BuiltAgentSession, build_agent, build_agent_session
from worker.turn_taking import load_turn_detector
from worker.warm_transfer import TransferLine

logger = logging.getLogger("stimm.worker")


JOB_IMPORTS = (
    # the OpenAI SDK and its HTTP stack, at a process's first chat request (~0.17 s of CPU)
    "openai.resources.chat.chat",
    "openai.resources.chat.completions.completions",
    "openai.resources.chat.completions.messages",
    "openai.resources.models",
    "openai.lib.streaming.chat",
    "openai.pagination",
    "httpcore2",
    "h2.connection",
    "anyio._backends._asyncio",
    "jiter",
    "truststore",
    # httpx's transport (the control-plane client, the webhooks' egress client)
    "httpcore",
    # the session's own: the audio FFT, the session report
    "numpy.fft",
    "livekit.agents.voice.report",
)
"""Modules a job process imported as its call started or at its first reply, found by
logging each import in job processes under bench/capacity.py. Imported with this module,
which livekit's forkserver preloads, every job process starts with them: with 8 calls starting
at once the OpenAI SDK's import alone held a job's event loop for 1.8 s."""
for _name in JOB_IMPORTS:
    with contextlib.suppress(ImportError):  # another HTTP stack: nothing to warm
        importlib.import_module(_name)


def warm_tls_contexts() -> None:
    """Build the TLS contexts each job process built as its call started: the control-plane
    client's and the LLM clients' (``stimm/tls.py``), and the one livekit's HTTP session (the
    Deepgram and ElevenLabs plugins) makes once per process. Each loads the CA store, ~18 ms
    of CPU; with 20 calls starting at once they held job loops 0.2-1.3 s (bench/dispatch.py).
    Called here, in livekit's forkserver, every job process inherits them, as livekit does for
    its own httpx client (``livekit.agents.ipc._preload``)."""
    tls_context()
    provider_tls_context()
    # livekit caches it per process and CA paths; no public way to ask for it early
    http_context._create_ssl_context()


warm_tls_contexts()

VAD_MIN_SILENCE = 0.25
"""Seconds of silence after which Silero reports the end of speech. The turn itself ends after
each agent's ``min_endpointing_delay`` (0.5 s by default), counted by livekit from the last
speech; a VAD that waited its default 0.55 s made every turn wait for it instead."""


INPUT_FRAME_SIZES_MS = (10, 20, 30, 40, 50)


def input_frame_ms() -> int:
    """Size of the caller's audio frames handed to the VAD and STT, in ms
    (``STIMM_WORKER_INPUT_FRAME_MS``, 20 by default).

    The end of the turn is counted from when the VAD saw the caller's last word, which it sees
    up to one frame late; each frame also costs a trip through the pipeline's Python. Measured
    with 4 concurrent calls on instant providers (bench/capacity.py, 2 cores): 10 ms frames
    0.18 cores per call, 20 ms 0.16, 50 ms (livekit's default) 0.13. 20 ms is WebRTC's own
    packet size: at most 20 ms later than 10 ms frames, for an eighth less CPU; 10 for the
    lowest latency, 50 for the most calls per core.
    """
    value = pool.env_number("STIMM_WORKER_INPUT_FRAME_MS", 20)
    if value not in INPUT_FRAME_SIZES_MS:
        raise ValueError(
            f"STIMM_WORKER_INPUT_FRAME_MS must be one of {INPUT_FRAME_SIZES_MS}, got {value:g}"
        )
    return int(value)


INPUT_FRAME_MS = input_frame_ms()


def prewarm(proc: JobProcess) -> None:
    """Ready a job process before any job arrives. Its VAD is livekit's native Silero
    (``livekit.agents.inference.VAD``): the model is loaded once, in the forkserver, and each
    job process shares it; a stream holds only its own state. The plugin's ONNX Silero
    (``silero.VAD.load()``) made each job process load its own copy, +35 MB and ~30 ms of CPU
    as the process started. Whisper and Piper are the worker's inference process's
    (``worker/inference.py``); the end-of-turn model is loaded by the first agent that uses it
    (``turn_detector``: ~225 MB a process, and agents end turns on VAD silence by default)."""
    inference.serve_from_inference_process()
    proc.userdata["vad"] = LocalVAD(min_silence_duration=VAD_MIN_SILENCE)
    tracing.setup()  # each job process exports its own spans


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
    """The worker's ``AgentServer`` with its single RTC entrypoint and its pool member
    (``worker/pool.py``: admission, load, drain, status endpoints, heartbeats)."""
    prometheus_port, prometheus_dir = _prometheus_options()
    prometheus_dir = pool.ensure_multiproc_dir(prometheus_dir)
    member = pool.PoolMember(
        pool.PoolOptions.from_env(), multiproc_dir=prometheus_dir, metrics_port=prometheus_port
    )
    server = AgentServer(
        setup_fnc=prewarm,
        port=health_port if health_port is not None else 8081,
        initialize_process_timeout=60.0,
        # a job's end waits for the turns a down control plane has not taken yet
        shutdown_process_timeout=flush_grace_s() + 10.0,
        prometheus_port=prometheus_port,
        prometheus_multiproc_dir=prometheus_dir,
        # imported once in livekit's forkserver: each job process starts with this module and
        # its imports (livekit plugins, MCP, the models) shared copy-on-write instead of
        # importing them again (~0.9 s of CPU per process; bench/capacity.py --profile)
        preload_modules=["worker.main"],
        **member.server_options(),
    )
    member.attach(server)
    # Whisper and Piper are loaded once, in the worker's inference process, for every job
    # (as it starts, or at the first call that uses them: read here so a bad value stops the
    # worker rather than its inference process)
    inference.preload_models()
    inference.register(WhisperRunner, PiperRunner)
    server.on("worker_started", lambda: inference.install(server))
    # the worker's own heap (its imports, the server): calls on the thread executor run here
    server.on("worker_started", freeze_startup_heap)
    server.rtc_session(entrypoint, agent_name=AGENT_NAME, on_request=member.on_request)
    return server


class LeaveRoom(Exception):
    """A step of ``entrypoint`` ends the job before the conversation starts.

    Args:
        reason: Why the job ends (``JobContext.shutdown``).
        failure: Recorded as the session's failure reason, when the session is known.
    """

    def __init__(self, reason: str, failure: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure


async def entrypoint(ctx: JobContext) -> None:
    """Run one dispatched session: load the agent, join, greet, converse, record."""
    meta = read_metadata(ctx)
    if meta is None:
        ctx.shutdown(reason="invalid job metadata")
        return
    client = ControlPlaneClient()
    session_id: str | None = meta.session_id
    try:
        phone_call = await take_phone_leg(ctx, meta, client)
        if phone_call is not None:
            session_id = phone_call.session_id
    except LeaveRoom as e:
        await leave(ctx, e, session_id, client)
        return
    assert session_id is not None
    with tracing.session_trace(ctx, session_id, meta):
        began = time.monotonic()
        try:
            config = await claim_and_load(ctx, meta, session_id, client)
            built = build_pipeline(ctx, config, session_id)
        except LeaveRoom as e:
            await leave(ctx, e, session_id, client, phone_call)
            return
        await converse(
            ctx, session_id, config, built, client, phone_call, setup_s=time.monotonic() - began
        )


async def leave(
    ctx: JobContext,
    e: LeaveRoom,
    session_id: str | None,
    client: ControlPlaneClient,
    phone_call: telephony.PhoneCall | None = None,
) -> None:
    """End the job before the conversation: record the failure when the session is known, and
    hang up a phone call that nobody will answer (rather than leave the caller in silence)."""
    if e.failure is not None and session_id is not None:
        await client.post_event(session_id, SessionEvent(status="failed", reason=e.failure))
    await client.aclose()
    if e.failure is not None and phone_call is not None:
        telephony.hang_up(ctx)
    else:
        ctx.shutdown(reason=e.reason)


def read_metadata(ctx: JobContext) -> JobMetadata | None:
    """The job's Stimm metadata; ``None`` (logged) when it has none a session can run on."""
    try:
        meta = JobMetadata.model_validate_json(ctx.job.metadata or "{}")
    except ValidationError:
        meta = None
    if meta is None or (meta.session_id is None and meta.channel != "phone"):
        logger.error("job %s has no valid Stimm metadata; leaving the room", ctx.job.id)
        return None
    return meta


async def take_phone_leg(
    ctx: JobContext, meta: JobMetadata, client: ControlPlaneClient
) -> telephony.PhoneCall | None:
    """Phone jobs: wait for the phone leg, and register a dial-in call (``worker/telephony.py``)."""
    if meta.channel != "phone":
        return None
    try:
        return await telephony.join_call(ctx, meta, client)
    except telephony.CallSetupError as e:
        logger.error("job %s: %s", ctx.job.id, e)
        # an outbound call's session exists: it fails with the reason instead of staying open
        raise LeaveRoom(str(e), failure=str(e)) from e


async def claim_and_load(
    ctx: JobContext, meta: JobMetadata, session_id: str, client: ControlPlaneClient
) -> WorkerAgentConfig:
    """Claim the session and load its agent in one round trip's time: the config is asked for
    while the claim is, and dropped unread when another job has the session."""
    loading = asyncio.ensure_future(load_agent(meta, session_id, client))
    try:
        await claim_session(ctx, meta, session_id, client)
    except BaseException:
        loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
        raise
    return await loading


async def claim_session(
    ctx: JobContext, meta: JobMetadata, session_id: str, client: ControlPlaneClient
) -> None:
    """Make this job the one that answers the session: a re-dispatch can race a slow worker
    that did take the job, and only one may answer."""
    try:
        await client.claim_session(
            session_id,
            SessionClaim(job_id=ctx.job.id, worker_id=ctx.worker_id, dispatch=meta.dispatch),
        )
    except SessionTakenError as e:
        logger.warning("job %s leaves the room: %s", ctx.job.id, e)
        raise LeaveRoom("session answered by another job") from e
    except ControlPlaneError as e:  # loading the agent next says whether it is reachable
        logger.warning("session %s: claim not recorded: %s", session_id, e)


async def load_agent(
    meta: JobMetadata, session_id: str, client: ControlPlaneClient
) -> WorkerAgentConfig:
    """The agent's config, a campaign row's variables filled in; a session whose agent cannot be
    loaded fails with the reason."""
    try:
        config = await client.get_agent(meta.agent_id)
    except (ControlPlaneError, ValidationError) as e:
        logger.error("session %s: agent %s cannot be loaded: %s", session_id, meta.agent_id, e)
        raise LeaveRoom("agent not loaded", failure=f"agent not loaded: {e}") from e
    if meta.variables:  # a campaign row's columns
        config = with_variables(config, meta.variables)
    return config


def build_pipeline(
    ctx: JobContext, config: WorkerAgentConfig, session_id: str
) -> BuiltAgentSession:
    """The ``AgentSession`` (``worker/session.py``); a session whose providers cannot be built
    (unknown provider, missing key, bad option) fails with the reason."""
    try:
        return build_agent_session(
            config,
            vad_model=ctx.proc.userdata["vad"],
            turn_detector=turn_detector(ctx.proc, config),
            secrets=config.secrets,
        )
    except ValueError as e:
        logger.error("session %s: agent %s cannot be built: %s", session_id, config.id, e)
        raise LeaveRoom("agent not built", failure=f"agent not built: {e}") from e


def turn_detector(proc: JobProcess, config: WorkerAgentConfig) -> TurnDetector | None:
    """The end-of-turn model when the agent may use it, loaded once per job process (~0.3 s)."""
    if config.turn_taking.turn_detection == "vad":
        return None
    if "turn_detector" not in proc.userdata:
        proc.userdata["turn_detector"] = load_turn_detector()
    detector: TurnDetector | None = proc.userdata["turn_detector"]
    return detector


async def converse(
    ctx: JobContext,
    session_id: str,
    config: WorkerAgentConfig,
    built: BuiltAgentSession,
    client: ControlPlaneClient,
    phone_call: telephony.PhoneCall | None,
    *,
    setup_s: float,
) -> None:
    """Join the room, report the session active, greet; record every turn until it ends.
    ``setup_s``: the job's time so far (claim, load, build), logged with the session's start."""
    agent_session = built.agent_session
    webhooks = egress_client()  # only where STIMM_EGRESS_ALLOW lets agents' webhooks go
    line = (
        TransferLine(client, session_id, phone_call.participant.identity)
        if phone_call is not None
        else None
    )
    agent = build_agent(config, http=webhooks, control_plane=client, line=line)
    recorder = SessionRecorder(client, session_id, retrieval_time=agent.pop_retrieval_time)
    recorder.attach(agent_session)
    recorder.attach_room(ctx.room)
    # the caller left (or the session failed): end the job now, not when LiveKit closes the
    # agent's now empty room after its departure timeout (20 s holding the worker's slot)
    agent_session.on("close", lambda ev: ctx.shutdown(reason=f"session closed: {ev.reason.value}"))
    if phone_call is not None:  # keypad digits, hang-up ends the job
        telephony.attach(ctx, agent_session, phone_call)

    async def on_shutdown(reason: str) -> None:
        # one callback, so the outcome is posted before the client closes
        await recorder.finished()
        if config.recording.enabled and not recorder.abandoned:
            await upload_recording(ctx, agent_session, client, session_id)
        await webhooks.aclose()
        await client.aclose()

    ctx.add_shutdown_callback(on_shutdown)

    joining = time.monotonic()
    await agent_session.start(
        agent=agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            audio_input=room_io.AudioInputOptions(frame_size_ms=INPUT_FRAME_MS)
        ),
        record=record_options(config.recording),
    )
    joined_s = time.monotonic() - joining
    await recorder.started(turn_detection=built.turn_detection, worker_id=ctx.worker_id)
    logger.info(
        "session %s started for agent %s: %.0f ms to claim, load and build, %.0f ms to join",
        session_id,
        config.id,
        setup_s * 1000,
        joined_s * 1000,
    )
    screened = False  # a screened callee's "Hello?" is answered by the greeting, whole
    if phone_call is not None and phone_call.outbound and config.voicemail.detect:
        if not await screen_answer(ctx, agent_session, phone_call, config, recorder):
            return  # a machine: the message is left or the call hung up
        screened = True
    if config.greeting:
        agent_session.say(config.greeting, allow_interruptions=not screened)
    if notice := unavailable_notice(agent.tool_servers):
        logger.warning("session %s: %s", session_id, notice)
        agent_session.say(notice, allow_interruptions=True)
    # a phone caller is in the room already; a web caller may never come
    if phone_call is None and not await caller_joined(ctx, config.turn_taking.no_show_timeout_s):
        logger.info("session %s: %s; leaving the room", session_id, NO_SHOW)
        recorder.abandon(NO_SHOW)
        ctx.shutdown(reason=NO_SHOW)


NO_SHOW = "the caller never joined"


def with_variables(config: WorkerAgentConfig, values: dict[str, str]) -> WorkerAgentConfig:
    """The config with ``{name}`` placeholders filled from ``values``."""
    voicemail_options = config.voicemail
    if voicemail_options.message:
        voicemail_options = voicemail_options.model_copy(
            update={"message": fill(voicemail_options.message, values)}
        )
    return config.model_copy(
        update={
            "instructions": fill(config.instructions, values),
            "greeting": fill(config.greeting, values) if config.greeting else config.greeting,
            "voicemail": voicemail_options,
        }
    )


async def screen_answer(
    ctx: JobContext,
    agent_session: AgentSession[Any],
    phone_call: telephony.PhoneCall,
    config: WorkerAgentConfig,
    recorder: SessionRecorder,
) -> bool:
    """Answering-machine detection: whether a human (or nobody can tell) is on the line.

    For a machine, the agent leaves its message after the beep or hangs up, and the call ends.
    """
    verdict, beep = await voicemail.screen(agent_session, phone_call.participant, config.voicemail)
    recorder.answered(verdict)
    try:
        if verdict != "machine":
            # the greeting answers their "Hello?": drop the turn AMD listened to (the verdict
            # can come before its end of turn) and any reply already queued to it
            agent_session.clear_user_turn()
            await agent_session.interrupt(force=True)
            return True
        if config.voicemail.on_machine == "leave_message" and config.voicemail.message:
            await voicemail.leave_message(agent_session, config.voicemail.message, beep)
        logger.info("session %s: answered by a machine; hanging up", phone_call.session_id)
        telephony.hang_up(ctx)
        return False
    finally:
        if beep is not None:
            await beep.aclose()


async def caller_joined(ctx: JobContext, timeout: float) -> bool:
    """Whether a caller (any participant but an agent) is in the room within ``timeout`` s."""
    try:
        await asyncio.wait_for(ctx.wait_for_participant(), timeout)
    except TimeoutError:
        return False
    return True
