"""The contract between the control plane and the worker.

Both services import these models; the control plane stores ``AgentConfig`` as-is and the
worker builds its pipeline from it. Keep this module small and free of service imports.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from stimm.egress import url_problem

AGENT_NAME = "stimm"
"""The LiveKit agent name every Stimm worker registers under (explicit dispatch)."""

Role = Literal["user", "assistant"]
Channel = Literal["web", "phone"]
SessionStatus = Literal["created", "active", "completed", "failed", "abandoned"]
"""``abandoned``: the caller never joined the room (``TurnTaking.no_show_timeout_s``)."""
ProviderRole = Literal["stt", "llm", "tts"]

_TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")


def _has_host(url: str) -> str:
    # the egress policy's own check, so a saved URL is one the worker will try
    if problem := url_problem(url):
        raise ValueError(problem)
    return url


HttpUrl = Annotated[
    str,
    Field(min_length=1, max_length=2_000, pattern=r"^https?://"),
    AfterValidator(_has_host),
]
"""An absolute http(s) URL with a host, kept as the string the user typed."""

SECRET_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"
"""Names in the control plane's secrets store: environment-style, e.g. ``OPENAI_API_KEY``."""


class SecretRef(BaseModel):
    """A value kept in the control plane's secrets store, by name.

    Agent configs hold these instead of API keys and webhook header values: the control plane
    stores a plaintext value it is sent and keeps only the reference; only the worker ever
    receives the value.
    """

    model_config = ConfigDict(extra="forbid")

    secret: str = Field(pattern=SECRET_NAME_PATTERN, max_length=64, examples=["OPENAI_API_KEY"])


SECRET_OPTIONS: tuple[str, ...] = ("api_key",)
"""Provider options whose values are secrets: stored as ``{"secret": NAME}``."""


class ProviderSpec(BaseModel):
    """One STT, LLM or TTS provider as stored in an agent's config."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    provider: str = Field(min_length=1, max_length=64, examples=["local"])
    model: str | None = Field(default=None, max_length=200)
    options: dict[str, Any] = Field(default_factory=dict)
    """Provider options; ``api_key`` is a plaintext key (stored away by the control plane) or a
    ``{"secret": NAME}`` reference to the secrets store."""

    @field_validator("options")
    @classmethod
    def _secret_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in SECRET_OPTIONS:
            value = v.get(name)
            if isinstance(value, dict):
                v[name] = SecretRef.model_validate(value).model_dump()
            elif value is not None and not isinstance(value, str):
                raise ValueError(f'options.{name} must be a string or {{"secret": NAME}}')
        return v


def _as_list(value: Any) -> Any:
    """A single provider is a one-element failover list."""
    return [value] if isinstance(value, dict | ProviderSpec) else value


ProviderList = Annotated[list[ProviderSpec], Field(min_length=1, max_length=5)]
"""Providers for one role, in failover order (livekit's FallbackAdapter)."""


class TurnTaking(BaseModel):
    """How the agent decides the user has finished and when it may be interrupted."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    turn_detection: Literal["auto", "model", "vad"] = "vad"
    """``vad``: the turn ends after ``min_endpointing_delay`` of silence; ``model``: livekit's
    offline end-of-turn model decides between ``min_endpointing_delay`` and
    ``max_endpointing_delay``; ``auto``: the model when it loads on this machine, VAD otherwise.

    VAD is the default: the model judges from the last 1.2 s of audio only, and it scores
    questions followed by clean silence as unfinished, so most questions waited the whole
    ``max_endpointing_delay`` (bench/turn_detector.py: mean score 0.26 against a threshold of
    0.36; voice to voice ~3.2 s instead of ~1.8 s in bench/roundtrip.py)."""
    min_endpointing_delay: float = Field(default=0.5, ge=0.0, le=5.0)
    max_endpointing_delay: float = Field(default=3.0, ge=0.1, le=10.0)
    allow_interruptions: bool = True
    interruption_min_duration: float = Field(default=0.5, ge=0.0, le=5.0)
    preemptive_generation: bool = True
    """Start the reply on the final transcript, before the turn is confirmed."""
    preemptive_tts: bool = True
    """With preemptive generation, also synthesize the reply's first audio before the turn is
    confirmed, so it plays the moment it is; a reply discarded because the caller went on
    speaking has then cost its synthesis (characters, for a paid TTS)."""
    early_first_clause: bool = True
    """A TTS that takes whole sentences (the offline Piper voice) starts speaking a reply's first
    clause as soon as it is complete instead of waiting for the whole first sentence."""
    no_show_timeout_s: float = Field(default=30.0, ge=1.0, le=600.0)
    """Seconds the agent waits in a web session's room for the caller; when nobody joins, it
    leaves (freeing its worker slot) and the session is recorded ``abandoned``. A phone caller
    is in the room before the agent, so phone calls never wait."""


class WebhookTool(BaseModel):
    """An HTTP tool the LLM can call; the JSON response goes back to the LLM."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["webhook"] = "webhook"
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=2_000)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments",
    )
    url: HttpUrl
    method: Literal["GET", "POST"] = "POST"
    headers: dict[str, str | SecretRef] = Field(default_factory=dict)
    """Header values are secrets (``Authorization: Bearer ...``): a plaintext value is stored
    away by the control plane and the config keeps a ``{"secret": NAME}`` reference."""
    timeout_s: float = Field(default=5.0, gt=0.0, le=60.0)
    failure_message: str | None = Field(default=None, max_length=500)
    """Said to the caller when the call fails or times out; a generic apology when unset."""

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not _TOOL_NAME.match(v):
            raise ValueError("tool names are identifiers: letters, digits and _")
        return v


class EndCallTool(BaseModel):
    """Lets the LLM end the call (hang up / leave the room) after saying goodbye."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["end_call"] = "end_call"
    description: str | None = Field(default=None, max_length=2_000)


class TransferCallTool(BaseModel):
    """Lets the LLM cold-transfer a phone caller (SIP REFER) to ``target``."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["transfer_call"] = "transfer_call"
    target: str = Field(min_length=1, max_length=200, examples=["tel:+15550100", "sip:desk@pbx"])
    description: str | None = Field(default=None, max_length=2_000)


class WarmTransferTool(BaseModel):
    """Lets the LLM warm-transfer a phone caller: the caller is put on hold, the agent phones
    ``target`` through the outbound trunk, tells the person who answers what the call is about
    and connects them with the caller if they accept (keypad 1 or "yes"); otherwise the agent
    returns to the caller and says so."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["warm_transfer"] = "warm_transfer"
    target: str = Field(
        min_length=1, max_length=200, pattern=r"^\S+$", examples=["+15550100", "sip:desk@pbx"]
    )
    """The number (or SIP URI) the outbound trunk dials."""
    description: str | None = Field(default=None, max_length=2_000)
    hold_music: bool = True
    """The caller hears hold music while on hold (silence otherwise)."""
    ringing_timeout_s: float = Field(default=30.0, ge=5.0, le=120.0)
    """How long the colleague's phone rings before the agent gives up."""
    decision_timeout_s: float = Field(default=20.0, ge=5.0, le=120.0)
    """How long the agent waits for the colleague's answer after the summary; silence
    declines."""


class McpServerTool(BaseModel):
    """The tools of an MCP server (Model Context Protocol), offered to the LLM as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    type: Literal["mcp"] = "mcp"
    name: str = Field(min_length=1, max_length=64, examples=["calendar"])
    """What the caller hears when the server cannot be reached ("my calendar tools")."""
    url: HttpUrl = Field(examples=["http://mcp:8000/mcp"])
    transport: Literal["streamable_http", "sse"] = "streamable_http"
    headers: dict[str, str | SecretRef] = Field(default_factory=dict)
    """Sent with every request; values are stored as secrets like webhook headers."""
    allowed_tools: list[str] | None = Field(default=None, max_length=64)
    """Only these of the server's tools; all of them when unset."""
    timeout_s: float = Field(default=10.0, gt=0.0, le=60.0)
    """Connecting, listing and each tool call."""


Tool = Annotated[
    WebhookTool | EndCallTool | TransferCallTool | WarmTransferTool | McpServerTool,
    Field(discriminator="type"),
]


class RagOptions(BaseModel):
    """Retrieval from the agent's knowledge base during a turn."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    top_k: int = Field(default=3, ge=1, le=20)
    min_score: float = Field(default=0.0, ge=-1.0, le=1.0)
    speculative: bool = True
    """Start retrieval on interim transcripts so it is done when the user stops speaking."""


AnalysisFieldType = Literal["string", "number", "integer", "boolean"]

_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class AnalysisField(BaseModel):
    """One value the post-call analysis extracts from the transcript."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    name: str = Field(pattern=_FIELD_NAME.pattern, examples=["callback_number"])
    type: AnalysisFieldType = "string"
    description: str = Field(min_length=1, max_length=500, examples=["The number to call back"])


class AnalysisConfig(BaseModel):
    """Post-call analysis: once a call ends, the agent's LLM reads the transcript and writes a
    summary and the ``fields`` (a JSON object checked against them)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    enabled: bool = False
    summary: bool = True
    fields: list[AnalysisField] = Field(default_factory=list, max_length=32)

    @field_validator("fields")
    @classmethod
    def _unique_names(cls, fields: list[AnalysisField]) -> list[AnalysisField]:
        names = [f.name for f in fields]
        if duplicate := next((n for n in names if names.count(n) > 1), None):
            raise ValueError(f"analysis field {duplicate!r} is listed twice")
        return fields


AnsweredBy = Literal["human", "machine", "unknown"]
"""Who answered an outbound call, as answering-machine detection judged it."""


class VoicemailOptions(BaseModel):
    """Answering-machine detection on the agent's outbound calls (livekit-agents' ``AMD``)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    detect: bool = False
    """Listen to who answers before greeting: a human hears the greeting, a machine gets
    ``on_machine``."""
    on_machine: Literal["leave_message", "hang_up"] = "hang_up"
    message: str | None = Field(default=None, max_length=2_000)
    """What the agent says after the beep (``on_machine: leave_message``)."""
    timeout_s: float = Field(default=20.0, ge=5.0, le=60.0)
    """Longest wait for a verdict after the call is answered; then ``unknown`` (greeted)."""

    @model_validator(mode="after")
    def _message_to_leave(self) -> VoicemailOptions:
        if self.on_machine == "leave_message" and not (self.message or "").strip():
            raise ValueError("on_machine 'leave_message' needs a message")
        return self


class RecordingPolicy(BaseModel):
    """Whether an agent's calls are recorded, and for how long the recordings are kept.

    A recording holds the caller (left channel) and the agent (right channel) as one stereo
    Opus/OGG file, made in the worker and uploaded to the control plane after the call.
    """

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    enabled: bool = False
    retention_days: int = Field(default=30, ge=1, le=3_650)
    """Days a recording is kept; the control plane's retention sweep deletes it afterwards."""


class AgentConfig(BaseModel):
    """Everything the worker needs to run a conversation for one agent."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    name: str = Field(min_length=1, max_length=100)
    instructions: str = Field(min_length=1, max_length=20_000)
    greeting: str | None = Field(default=None, max_length=2_000)
    language: str = Field(default="en", min_length=2, max_length=16)
    voice: str | None = Field(default=None, max_length=200)
    stt: ProviderList = Field(default_factory=lambda: [ProviderSpec(provider="local")])
    llm: ProviderList
    tts: ProviderList = Field(default_factory=lambda: [ProviderSpec(provider="local")])
    turn_taking: TurnTaking = Field(default_factory=TurnTaking)
    tools: list[Tool] = Field(default_factory=list, max_length=32)
    knowledge_base_id: str | None = None
    rag: RagOptions = Field(default_factory=RagOptions)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    redact_pii: bool = False
    """Store transcripts and analyses with phone numbers, emails and card numbers masked."""
    voicemail: VoicemailOptions = Field(default_factory=VoicemailOptions)
    recording: RecordingPolicy = Field(default_factory=RecordingPolicy)

    @field_validator("stt", "llm", "tts", mode="before")
    @classmethod
    def _single_provider_is_a_list(cls, v: Any) -> Any:
        return _as_list(v)


class WorkerAgentConfig(AgentConfig):
    """What the worker receives: the config, its id, and the provider secrets it needs
    (environment-variable names → values), decrypted for this one fetch."""

    id: str
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)


class JobMetadata(BaseModel):
    """What the control plane puts in the LiveKit dispatch metadata."""

    agent_id: str
    session_id: str | None = None
    """Set for sessions the control plane created; phone calls routed by a SIP dispatch rule
    have none, and the worker registers the session when the call arrives."""
    channel: Channel = "web"
    caller: str | None = None
    """Phone number of the remote party for phone sessions."""
    dispatch: str | None = None
    """A token new to each dispatch of the session; the job sends it back when it claims the
    session, so a job of a withdrawn dispatch cannot answer it."""
    trace_context: dict[str, str] | None = None
    """The W3C trace context (``traceparent``, ``tracestate``) of the request that started the
    session, when the control plane exports traces: the job's spans join that trace
    (``stimm/tracing.py``)."""
    outbound: bool = False
    """An outbound phone call the control plane placed (answering-machine detection runs)."""
    variables: dict[str, str] = Field(default_factory=dict)
    """Values for ``{name}`` placeholders in the agent's greeting, instructions and voicemail
    message (a campaign row's columns)."""


class TurnMetrics(BaseModel):
    """Per-turn latency figures in seconds, as livekit-agents reports them."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    end_of_turn_delay: float | None = None
    transcription_delay: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    e2e_latency: float | None = None
    retrieval: float | None = None


class TurnIn(BaseModel):
    """One finished conversation turn, posted by the worker."""

    role: Role
    text: str = Field(max_length=50_000)
    interrupted: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    metrics: TurnMetrics = Field(default_factory=TurnMetrics)
    key: str | None = Field(default=None, min_length=1, max_length=64)
    """Stable id of the turn, the same on every retry: the control plane stores a session's
    turn with a given key once, however often the worker posts it."""


class SessionClaim(BaseModel):
    """A job asking to answer a session. The first job to claim it does; any other leaves.

    Guards the re-dispatch of the control plane: a dispatch withdrawn as unassigned may still
    have been taken, and two agents would then greet the same caller.
    """

    job_id: str = Field(min_length=1, max_length=100)
    worker_id: str | None = Field(default=None, max_length=100)
    dispatch: str | None = Field(default=None, max_length=64)
    """``JobMetadata.dispatch`` of the job's dispatch."""


class PhoneSessionCreate(BaseModel):
    """Body of the worker's ``POST /api/worker/sessions``: a call that reached an agent through
    a SIP dispatch rule, so the control plane has not seen it yet."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str
    room: str = Field(min_length=1, max_length=128)
    channel: Literal["phone"] = "phone"
    caller: str | None = Field(default=None, max_length=64)
    callee: str | None = Field(default=None, max_length=64)
    sip_call_id: str | None = Field(default=None, max_length=200)
    participant_identity: str | None = Field(default=None, max_length=128)


class TransferLegCreate(BaseModel):
    """Body of the worker's ``POST /api/worker/sessions/{id}/transfer-legs``: phone a warm
    transfer's ``target`` into the session's room (the trunk's credentials stay in the control
    plane)."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1, max_length=200)
    """One of the session agent's ``warm_transfer`` targets."""
    participant_identity: str = Field(min_length=1, max_length=128, pattern=r"^[\w.:-]+$")


class TransferLeg(BaseModel):
    """The answered transfer leg."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    participant_identity: str
    sip_call_id: str | None = None


class PhoneSessionCreated(BaseModel):
    session_id: str
    call_id: str


class SessionEvent(BaseModel):
    """A session lifecycle change reported by the worker."""

    status: Literal["active", "completed", "failed", "abandoned"]
    reason: str | None = Field(default=None, max_length=2_000)
    """Why a session failed or was abandoned."""
    turn_detection: str | None = Field(default=None, max_length=32)
    """Which end-of-turn strategy ran (``model`` or ``vad``), reported when active."""
    worker_id: str | None = Field(default=None, max_length=100)
    answered_by: AnsweredBy | None = None
    """Who answered an outbound call (answering-machine detection), reported once known."""


class KnowledgeQuery(BaseModel):
    """A retrieval request against one knowledge base."""

    query: str = Field(min_length=1, max_length=4_000)
    top_k: int = Field(default=3, ge=1, le=50)


class RetrievedChunk(BaseModel):
    document_id: str
    document_name: str
    text: str
    score: float


class KnowledgeQueryResult(BaseModel):
    chunks: list[RetrievedChunk]
    retrieval_ms: float


class WorkerHeartbeat(BaseModel):
    """A worker's periodic report to the control plane (pool view, lost-worker detection)."""

    worker_id: str = Field(min_length=1, max_length=100)
    """The id LiveKit gave the worker at registration (also ``Session.worker_id``)."""
    hostname: str = Field(default="", max_length=255)
    pid: int | None = None
    load: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    max_sessions: int = Field(ge=1)
    active_jobs: int = Field(ge=0)
    sessions: list[str] = Field(default_factory=list, max_length=1_000)
    """Stimm session ids of the worker's running jobs (phone jobs may not have one yet)."""
    draining: bool = False
    p95_latency_s: float | None = None
    """Recent p95 end-of-speech → first-audio of the worker's turns."""
    cpu_share: float = Field(default=0.0, ge=0)
    jobs_accepted: int = Field(default=0, ge=0)
    jobs_failed: int = Field(default=0, ge=0)
    status_url: str | None = Field(default=None, max_length=500)
    """Where the worker's ``/ready`` and ``/live`` endpoints answer."""
    metrics_url: str | None = Field(default=None, max_length=500)
