"""OpenTelemetry traces, shared by the control plane and the worker.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then each service exports its spans over
OTLP/HTTP (protobuf) to ``<endpoint>/v1/traces``, and one session is one trace, from the
control plane's ``POST /api/sessions`` to the worker's STT, LLM and TTS spans of each turn.
The trace crosses from the control plane to the worker in ``JobMetadata.trace_context`` (W3C
``traceparent``/``tracestate``). The exporter's other standard variables
(``OTEL_EXPORTER_OTLP_HEADERS``, ``..._TIMEOUT``, ``..._CERTIFICATE``) and
``OTEL_SERVICE_NAME`` apply as usual.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
SESSION_ID = "stimm.session_id"
"""The span attribute holding the control plane's session id."""
AGENT_ID = "stimm.agent_id"


def otlp_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """The OTLP/HTTP base URL traces go to, or ``None`` when tracing is off."""
    return environ.get(ENDPOINT_ENV, "").strip() or None


def tracer_provider(service_name: str, endpoint: str) -> TracerProvider:
    """A provider that batches spans to ``endpoint``'s ``/v1/traces`` in the background.

    ``OTEL_SERVICE_NAME`` wins over ``service_name``.
    """
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def current_trace_context() -> dict[str, str]:
    """The current span's W3C trace context as text headers; empty when nothing is traced."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context of a remote parent given as ``current_trace_context`` wrote it."""
    return propagate.extract(carrier)


def tag_current_span(session_id: str, agent_id: str) -> None:
    """Name the session on the current span (the request that starts it); no-op untraced."""
    trace.get_current_span().set_attributes({SESSION_ID: session_id, AGENT_ID: agent_id})
