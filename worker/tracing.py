"""The worker's traces: livekit-agents' own spans, exported when OTEL_EXPORTER_OTLP_ENDPOINT is set.

livekit-agents traces every session (``agent_session``, ``user_turn`` with the STT's model,
``llm_request``, ``tts_request``, ...) through the tracer provider given to
``livekit.agents.telemetry.set_tracer_provider``. Each job process gets one here (``setup``,
from ``prewarm``); ``session_trace`` then puts a job's spans under the control plane's span of
the request that started the session and writes ``stimm.session_id`` on every one of them.
Conversation content (transcripts, prompts, replies) is left out unless
``LIVEKIT_TELEMETRY_ALLOW_PII=1``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from livekit.agents import JobContext, get_job_context, telemetry
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider

from stimm import tracing
from stimm.schema import JobMetadata

SERVICE_NAME = "stimm-worker"
JOB_SPAN = "stimm_job"
PII_ENV = "LIVEKIT_TELEMETRY_ALLOW_PII"


class SessionIdProcessor(SpanProcessor):
    """Writes ``stimm.session_id`` on every span a job starts once it knows its session.

    livekit-agents starts a session's spans from many tasks (and, with the thread executor,
    several jobs share a process); what they all see is their job context, so the session is
    looked up by job id.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, str] = {}

    def bind(self, job_id: str, session_id: str) -> None:
        self._sessions[job_id] = session_id

    def release(self, job_id: str) -> None:
        self._sessions.pop(job_id, None)

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        job = get_job_context(required=False)
        if job is not None and (session_id := self._sessions.get(job.job.id)):
            span.set_attribute(tracing.SESSION_ID, session_id)


_lock = threading.Lock()
_provider: TracerProvider | None = None
_sessions = SessionIdProcessor()


def setup() -> TracerProvider | None:
    """Export this process's spans when OTEL_EXPORTER_OTLP_ENDPOINT is set; once per process.

    Returns the provider, or ``None`` when tracing is off (livekit's spans then go nowhere).
    """
    global _provider
    endpoint = tracing.otlp_endpoint()
    if endpoint is None:
        return None
    with _lock:
        if _provider is None:
            provider = tracing.tracer_provider(SERVICE_NAME, endpoint)
            provider.add_span_processor(_sessions)
            telemetry.set_tracer_provider(provider, allow_pii=allow_pii())
            _provider = provider
    return _provider


def allow_pii() -> bool:
    """Whether spans may hold the conversation: ``LIVEKIT_TELEMETRY_ALLOW_PII`` set to a true
    value (livekit's own reading, except that an empty variable, as compose passes an unset
    one, is "no")."""
    if not os.environ.get(PII_ENV, "").strip():
        return False
    return bool(telemetry.utils.allow_pii_from_env())


@contextmanager
def session_trace(ctx: JobContext, session_id: str, meta: JobMetadata) -> Iterator[None]:
    """Run a job's setup in a ``stimm_job`` span, child of the session request's span.

    The ``AgentSession`` started inside it, and so every turn's spans, join that trace; each
    span of the job carries the session id. The job's spans are sent before it ends.
    """
    provider = _provider
    if provider is None:
        yield
        return
    job_id = ctx.job.id
    _sessions.bind(job_id, session_id)

    async def send_spans() -> None:
        # a job process exits through os._exit: the batch would be lost without this
        await asyncio.to_thread(provider.force_flush)
        _sessions.release(job_id)

    ctx.add_shutdown_callback(send_spans)
    tracer = provider.get_tracer("stimm.worker")
    with tracer.start_as_current_span(
        JOB_SPAN,
        context=tracing.context_from(meta.trace_context or {}),
        attributes={
            tracing.SESSION_ID: session_id,
            tracing.AGENT_ID: meta.agent_id,
            "lk.job_id": job_id,
            "lk.room_name": ctx.job.room.name,
        },
    ):
        yield
