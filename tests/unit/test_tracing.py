"""Traces: off without an OTLP endpoint; the session request's context crosses the dispatch."""

from __future__ import annotations

import pytest
from livekit.agents import telemetry
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stimm import tracing
from stimm.schema import JobMetadata
from worker import tracing as worker_tracing


def test_nothing_is_traced_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tracing.ENDPOINT_ENV, "")
    assert worker_tracing.setup() is None
    # livekit-agents' spans stay no-ops, and the dispatch carries no trace context
    with telemetry.tracer.start_as_current_span("user_turn") as span:
        assert not span.is_recording()
        assert tracing.current_trace_context() == {}


def test_the_job_continues_the_session_requests_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    with tracer.start_as_current_span("POST /api/sessions") as request:
        meta = JobMetadata(
            agent_id="a", session_id="s", trace_context=tracing.current_trace_context()
        )
    # the metadata travels as JSON in the LiveKit dispatch
    received = JobMetadata.model_validate_json(meta.model_dump_json())
    assert received.trace_context and received.trace_context["traceparent"]
    with tracer.start_as_current_span(
        "stimm_job", context=tracing.context_from(received.trace_context)
    ) as job:
        pass

    assert job.get_span_context().trace_id == request.get_span_context().trace_id
    (job_span,) = [s for s in exporter.get_finished_spans() if s.name == "stimm_job"]
    assert job_span.parent is not None
    assert job_span.parent.span_id == request.get_span_context().span_id


@pytest.mark.parametrize(
    ("value", "allowed"), [(None, False), ("", False), ("0", False), ("false", False), ("1", True)]
)
def test_the_conversation_stays_out_of_spans_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, value: str | None, allowed: bool
) -> None:
    if value is None:
        monkeypatch.delenv(worker_tracing.PII_ENV, raising=False)
    else:
        monkeypatch.setenv(worker_tracing.PII_ENV, value)
    assert worker_tracing.allow_pii() is allowed
