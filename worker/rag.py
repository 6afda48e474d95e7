"""Retrieval from an agent's knowledge base during a turn, started early when it can be.

A turn's retrieval is keyed by the user's words. It can start at three moments, earliest first:

1. *Speculatively*, on every transcript the STT publishes while the user speaks
   (``user_input_transcribed``): interim results from a streaming STT such as Deepgram, and the
   final transcript, which arrives before the endpointing delay has passed. When the user stops,
   the retrieval for what they said is usually already finished.
2. When livekit starts a *preemptive* reply on the preflight transcript (``llm_node`` runs
   before the turn is confirmed).
3. When the turn is complete (``llm_node`` for the real reply).

Whichever comes first is reused by the later ones. The offline Whisper STT is not streaming:
it publishes no interim results, only a final transcript after the VAD closes the utterance,
so with it speculation reduces to (1) on the final transcript and (2); it still works, with a
smaller head start.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from stimm.schema import KnowledgeQuery, RagOptions, RetrievedChunk
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError

logger = logging.getLogger("stimm.worker")

CONTEXT_HEADER = "Facts from the knowledge base that may help answer the user's next message:"
MAX_SPECULATIONS = 16
"""Retrievals kept; the oldest is dropped first. A repeated question reuses its result."""


def normalize(text: str) -> str:
    """Lower-case words only, so ``"Open?"`` and ``"open"`` are the same query."""
    return " ".join(re.findall(r"[\w']+", text.lower()))


@dataclass
class Retrieval:
    """The outcome of one retrieval for one turn.

    Attributes:
        chunks: What the knowledge base returned (above ``min_score``).
        waited: Seconds the turn waited for it (0 when speculation had finished it).
        speculative: Whether it had been started before the turn asked for it.
    """

    chunks: list[RetrievedChunk]
    waited: float
    speculative: bool


class KnowledgeRetriever:
    """Retrieves chunks for a turn through the control plane's worker query endpoint.

    Args:
        client: The control-plane client (worker-token auth).
        knowledge_base_id: The agent's knowledge base.
        options: ``top_k``, ``min_score`` and whether to speculate.
    """

    def __init__(
        self, client: ControlPlaneClient, knowledge_base_id: str, options: RagOptions
    ) -> None:
        self._client = client
        self._kb = knowledge_base_id
        self._options = options
        self._tasks: dict[str, asyncio.Task[list[RetrievedChunk]]] = {}

    @property
    def speculative(self) -> bool:
        return self._options.speculative

    def speculate(self, transcript: str) -> None:
        """Start retrieval for a transcript heard while the user is still speaking."""
        if self._options.speculative:
            logger.debug("knowledge base %s: speculative retrieval", self._kb)
            self._start(transcript)

    async def for_turn(self, user_text: str) -> Retrieval:
        """The chunks for the user's finished utterance; never raises.

        A knowledge base that cannot be reached gives no chunks (the agent answers without
        them) rather than a failed turn.
        """
        key = normalize(user_text)
        speculative = key in self._tasks
        task = self._start(user_text)
        started = time.perf_counter()
        try:
            chunks = await asyncio.shield(task)
        except (TimeoutError, ControlPlaneError) as e:
            logger.warning("knowledge base %s: retrieval failed: %s", self._kb, e)
            chunks = []
        waited = time.perf_counter() - started
        logger.debug(
            "knowledge base %s: %d chunks for the turn, waited %.3f s (speculative: %s)",
            self._kb,
            len(chunks),
            waited,
            speculative,
        )
        return Retrieval(chunks, waited, speculative)

    def cancel_all(self) -> None:
        """Cancel retrievals still running (the session is ending)."""
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
        self._tasks.clear()

    def _start(self, text: str) -> asyncio.Task[list[RetrievedChunk]]:
        key = normalize(text)
        task = self._tasks.get(key)
        if task is None or (task.done() and task.exception() is not None):
            if len(self._tasks) >= MAX_SPECULATIONS:
                oldest = next(iter(self._tasks))
                self._tasks.pop(oldest).cancel()
            task = asyncio.create_task(self._query(text))
            self._tasks[key] = task
        return task

    async def _query(self, text: str) -> list[RetrievedChunk]:
        result = await self._client.query_knowledge_base(
            self._kb, KnowledgeQuery(query=text[:4_000], top_k=self._options.top_k)
        )
        return [c for c in result.chunks if c.score >= self._options.min_score]


def context_message(chunks: list[RetrievedChunk]) -> str:
    """The system message that carries a turn's chunks to the LLM."""
    lines = [f"- ({c.document_name}) {c.text.strip()}" for c in chunks]
    return "\n".join([CONTEXT_HEADER, *lines])
