"""Report a session's turns and outcome to the control plane as they happen."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import CloseEvent, ConversationItemAddedEvent, ErrorEvent

from stimm.schema import AnsweredBy, SessionEvent, TurnIn, TurnMetrics
from worker.control_plane_client import ControlPlaneClient
from worker.metrics import observe_turn
from worker.outbox import Outbox, flush_grace_s

logger = logging.getLogger("stimm.worker")

APOLOGY = "Sorry, I'm having trouble answering right now. Please try again in a moment."


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int | float) else None


def turn_from_message(msg: llm.ChatMessage, *, retrieval: float | None = None) -> TurnIn | None:
    """A ``TurnIn`` for a finished user or assistant message; None for anything else.

    Args:
        msg: The conversation item livekit added.
        retrieval: Seconds the reply waited for knowledge-base retrieval, if it retrieved.
    """
    if msg.role not in ("user", "assistant"):
        return None
    text = msg.text_content or ""
    if not text.strip():
        return None
    m = msg.metrics
    return TurnIn(
        role=msg.role,
        text=text,
        interrupted=msg.interrupted,
        started_at=_ts(m.get("started_speaking_at")),
        ended_at=_ts(m.get("stopped_speaking_at")),
        metrics=TurnMetrics(
            end_of_turn_delay=m.get("end_of_turn_delay"),
            transcription_delay=m.get("transcription_delay"),
            llm_ttft=m.get("llm_node_ttft"),
            tts_ttfb=m.get("tts_node_ttfb"),
            e2e_latency=m.get("e2e_latency"),
            retrieval=retrieval,
        ),
    )


EXPECTED_DISCONNECTS = frozenset(
    {
        rtc.DisconnectReason.CLIENT_INITIATED,  # the job left: the call ended
        rtc.DisconnectReason.ROOM_DELETED,  # the control plane or a tool closed the room
        rtc.DisconnectReason.ROOM_CLOSED,
        rtc.DisconnectReason.PARTICIPANT_REMOVED,
    }
)
"""Room disconnects that end a call normally; any other (the signal closed, the node went
away and reconnecting failed, a timeout) means LiveKit lost the call."""


class SessionRecorder:
    """Posts every finished turn, apologises out loud on provider failure, records the outcome.

    Turns and events go through an ``Outbox``: the call never waits on the control plane, and
    what it could not take yet (down, restarting) is posted in order once it is back. Every
    turn posted is also counted in the Prometheus metrics (``worker.metrics``).

    Args:
        client: The control-plane client.
        session_id: The Stimm session id from the job metadata.
        retrieval_time: Gives the seconds the latest reply waited for retrieval, if any
            (``StimmAgent.pop_retrieval_time``).
    """

    def __init__(
        self,
        client: ControlPlaneClient,
        session_id: str,
        *,
        retrieval_time: Callable[[], float | None] | None = None,
    ) -> None:
        self._session_id = session_id
        self._retrieval_time = retrieval_time
        self.outbox = Outbox(client)
        self._key_prefix = uuid.uuid4().hex[:16]
        self._turns = 0
        self.failure: str | None = None
        self.abandoned: str | None = None

    def attach(self, agent_session: AgentSession[Any]) -> None:
        agent_session.on("conversation_item_added", self._on_item)
        agent_session.on("error", lambda ev: self._on_error(agent_session, ev))
        agent_session.on("close", self._on_close)

    def attach_room(self, room: rtc.Room) -> None:
        """Fail the session when LiveKit drops the room's connection (its node died, the
        network went and reconnecting failed) rather than recording it completed."""
        room.on("disconnected", self._on_room_disconnected)

    def _on_room_disconnected(self, reason: rtc.DisconnectReason.ValueType) -> None:
        if reason in EXPECTED_DISCONNECTS or self.failure is not None or self.abandoned:
            return
        self.failure = f"LiveKit connection lost ({rtc.DisconnectReason.Name(reason)})"
        logger.error("session %s: %s", self._session_id, self.failure)

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if not isinstance(ev.item, llm.ChatMessage):
            return
        retrieval = None
        if ev.item.role == "assistant" and self._retrieval_time is not None:
            retrieval = self._retrieval_time()
        if turn := turn_from_message(ev.item, retrieval=retrieval):
            observe_turn(turn)
            self._turns += 1
            turn.key = f"{self._key_prefix}-{self._turns}"  # the same on every retry
            self.outbox.put(
                f"/api/worker/sessions/{self._session_id}/turns", turn.model_dump_json()
            )

    def _post_event(self, event: SessionEvent) -> None:
        self.outbox.put(f"/api/worker/sessions/{self._session_id}/events", event.model_dump_json())

    def _on_error(self, agent_session: AgentSession[Any], ev: ErrorEvent) -> None:
        error = ev.error
        if getattr(error, "recoverable", True):
            return
        kind = getattr(error, "type", "error")
        self.failure = f"{kind}: {getattr(error, 'error', error)}"[:500]
        logger.error("session %s: provider failure (%s)", self._session_id, kind)
        if kind != "tts_error":
            agent_session.say(APOLOGY, allow_interruptions=False, add_to_chat_ctx=True)

    def _on_close(self, ev: CloseEvent) -> None:
        if ev.error is not None and self.failure is None:
            self.failure = f"{ev.error.type}: {ev.error.error}"[:500]

    async def started(self, *, turn_detection: str, worker_id: str | None = None) -> None:
        """Record that the session is live, with the end-of-turn strategy it runs."""
        self._post_event(
            SessionEvent(status="active", turn_detection=turn_detection, worker_id=worker_id)
        )

    def answered(self, answered_by: AnsweredBy) -> None:
        """Record who answered an outbound call (answering-machine detection)."""
        self._post_event(SessionEvent(status="active", answered_by=answered_by))

    def abandon(self, reason: str) -> None:
        """Record the session as abandoned when it finishes (nobody to talk to)."""
        self.abandoned = reason

    async def finished(self, grace_s: float | None = None) -> None:
        """Record the outcome after every turn, waiting up to ``grace_s`` (default
        ``STIMM_WORKER_FLUSH_GRACE_S``) for a control plane that is still down."""
        if self.abandoned:
            event = SessionEvent(status="abandoned", reason=self.abandoned)
        elif self.failure:
            event = SessionEvent(status="failed", reason=self.failure)
        else:
            event = SessionEvent(status="completed")
        self._post_event(event)
        await self.outbox.flush(flush_grace_s() if grace_s is None else grace_s)
        await self.outbox.aclose()
