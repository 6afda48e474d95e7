"""The worker's one HTTP client for the control plane's worker-only API (``/api/worker/...``).

Everything in the worker that talks to the control plane goes through ``ControlPlaneClient``:
the job (claim, agent config, phone-call registration, turns and events, retrieval) and the
pool member (heartbeats, leaving the pool). Every payload is a type of ``stimm.schema``.
Over 300 lines on purpose: one client, one method per worker-only endpoint, is the point.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
from opentelemetry import propagate

from stimm.schema import (
    KnowledgeQuery,
    KnowledgeQueryResult,
    PhoneSessionCreate,
    PhoneSessionCreated,
    SessionClaim,
    SessionEvent,
    TransferLeg,
    TransferLegCreate,
    TurnIn,
    WorkerAgentConfig,
    WorkerHeartbeat,
)
from stimm.tls import tls_context

logger = logging.getLogger("stimm.worker")


class ControlPlaneError(RuntimeError):
    """The control plane could not be reached or refused a request."""


class AgentNotFoundError(ControlPlaneError):
    """The dispatched agent id does not exist (any more)."""


class SessionTakenError(ControlPlaneError):
    """Another job answers the session (a re-dispatch raced this one), or it has ended."""


DEFAULT_URL = "http://127.0.0.1:8000"
"""The control plane ``STIMM_CONTROL_PLANE_URL`` names when unset (the local stack's)."""

CONTROL_PLANE_WAIT_S = 30.0
"""How long a job waits for a control plane that cannot be reached (restarting) before it gives
up on its session."""

KEEPALIVE_EXPIRY = 2.0
"""Seconds an idle connection to the control plane is reused: well under the server's own
keep-alive timeout (uvicorn: 5 s), so the server never closes one the client is about to use."""


async def _send_trace_context(request: httpx.Request) -> None:
    propagate.inject(request.headers)  # nothing when the job is not traced


class ControlPlaneClient:
    """Fetches agent configs and records session events and turns.

    Args:
        base_url: The control plane's root URL; ``STIMM_CONTROL_PLANE_URL`` by default.
        token: The worker credential; ``STIMM_WORKER_TOKEN`` by default.
        wait_s: How long a job waits for an unreachable control plane to claim its session
            and load its agent.
        transport: An httpx transport, for tests.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 5.0,
        wait_s: float = CONTROL_PLANE_WAIT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.wait_s = wait_s
        base_url = base_url or os.environ.get("STIMM_CONTROL_PLANE_URL", DEFAULT_URL)
        token = token or os.environ.get("STIMM_WORKER_TOKEN", "")
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            verify=tls_context(),  # not a CA bundle loaded again by every job
            # uvicorn closes a connection idle for 5 s; a client that kept it as long (httpx's
            # default) sometimes sent a request on it just as it closed, and the request failed
            # at once (a knowledge-base query 5 s after the greeting's turn was posted)
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
            # the control plane's spans for a session's requests join the session's trace
            event_hooks={"request": [_send_trace_context]},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, body: str | None = None) -> httpx.Response:
        """A request a job needs before it can answer its caller, tried again (backoff up to
        2 s) while the control plane cannot be reached or is overloaded, for ``wait_s``: a
        control plane restarting must not leave a caller with nobody on the line.

        Raises ``ControlPlaneError`` when it still cannot be reached.
        """
        deadline = time.monotonic() + self.wait_s
        delay = 0.25
        while True:
            try:
                resp = await self._http.request(
                    method,
                    path,
                    content=body,
                    headers={"Content-Type": "application/json"} if body is not None else None,
                )
            except httpx.HTTPError as e:
                problem = f"control plane unreachable: {e!r}"
            else:
                if resp.status_code < 500 and resp.status_code not in _RETRY_STATUSES:
                    return resp
                problem = f"{path}: {_detail(resp)}"
            if time.monotonic() + delay > deadline:
                raise ControlPlaneError(problem)
            logger.warning("%s; trying again in %.2g s", problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def get_agent(self, agent_id: str) -> WorkerAgentConfig:
        """Load an agent's config, waiting up to ``wait_s`` for a control plane that is
        restarting. Raises AgentNotFoundError or ControlPlaneError."""
        resp = await self._send("GET", f"/api/worker/agents/{agent_id}")
        if resp.status_code == 404:
            raise AgentNotFoundError(f"agent {agent_id} not found")
        if resp.status_code != 200:
            raise ControlPlaneError(f"loading agent {agent_id}: {_detail(resp)}")
        return WorkerAgentConfig.model_validate(resp.json())

    async def query_knowledge_base(
        self, knowledge_base_id: str, query: KnowledgeQuery
    ) -> KnowledgeQueryResult:
        """Retrieve chunks from a knowledge base. Raises ControlPlaneError."""
        try:
            resp = await self._http.post(
                f"/api/worker/knowledge-bases/{knowledge_base_id}/query",
                content=query.model_dump_json(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as e:
            raise ControlPlaneError(f"control plane unreachable: {e!r}") from e
        if resp.status_code != 200:
            raise ControlPlaneError(
                f"querying knowledge base {knowledge_base_id}: HTTP {resp.status_code}"
            )
        try:
            return KnowledgeQueryResult.model_validate(resp.json())
        except ValueError as e:
            raise ControlPlaneError(f"knowledge base {knowledge_base_id}: bad answer") from e

    async def claim_session(self, session_id: str, claim: SessionClaim) -> None:
        """Make this job the one that answers the session.

        Raises ``SessionTakenError`` when another job has it or it has ended, and
        ``ControlPlaneError`` when the control plane cannot be asked.
        """
        path = f"/api/worker/sessions/{session_id}/claim"
        resp = await self._send("POST", path, claim.model_dump_json())
        if resp.status_code == 409:
            raise SessionTakenError(_detail(resp))
        if resp.status_code != 200:
            raise ControlPlaneError(f"claiming session {session_id}: HTTP {resp.status_code}")

    async def register_phone_session(self, call: PhoneSessionCreate) -> PhoneSessionCreated:
        """Register a dial-in call that a SIP dispatch rule routed here; idempotent per room.

        Tried three times while the control plane cannot be reached or answers 5xx. Raises
        ``ControlPlaneError`` when it refuses the call or cannot be reached.
        """
        body = call.model_dump_json()
        for attempt in range(3):
            try:
                resp = await self._http.post(
                    "/api/worker/sessions",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
            except httpx.HTTPError as e:
                logger.warning("registering the call failed (attempt %d): %s", attempt + 1, e)
            else:
                if resp.status_code == 201:
                    return PhoneSessionCreated.model_validate(resp.json())
                if resp.status_code < 500:
                    raise ControlPlaneError(
                        f"the control plane refused the call: HTTP {resp.status_code}"
                    )
            await asyncio.sleep(0.25 * (attempt + 1))
        raise ControlPlaneError("the control plane could not be reached to register the call")

    async def heartbeat(self, beat: WorkerHeartbeat) -> None:
        """Report this worker to the pool view. Raises ``ControlPlaneError`` when not taken."""
        try:
            resp = await self._http.post(
                "/api/worker/heartbeat",
                content=beat.model_dump_json(),
                headers={"Content-Type": "application/json"},
            )
            resp.raise_for_status()
        except httpx.HTTPError as e:
            raise ControlPlaneError(str(e)) from e

    async def leave_pool(self, worker_id: str) -> None:
        """A drained worker removes itself from the pool view (best effort, 1 s)."""
        await self._http.delete(f"/api/worker/workers/{worker_id}", timeout=1.0)

    async def post_event(self, session_id: str, event: SessionEvent) -> None:
        await self._post(f"/api/worker/sessions/{session_id}/events", event.model_dump_json())

    async def dial_transfer_leg(
        self, session_id: str, leg: TransferLegCreate, *, timeout: float
    ) -> TransferLeg:
        """Have the control plane phone a warm transfer's target into the session's room;
        returns once they answered. Raises ``ControlPlaneError`` with the reason (refused, busy,
        not answered, not configured) otherwise."""
        path = f"/api/worker/sessions/{session_id}/transfer-legs"
        try:
            resp = await self._http.post(
                path,
                content=leg.model_dump_json(),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
        except httpx.HTTPError as e:
            raise ControlPlaneError(f"control plane unreachable: {e!r}") from e
        if resp.status_code != 201:
            raise ControlPlaneError(_detail(resp))
        return TransferLeg.model_validate(resp.json())

    async def post_turn(self, session_id: str, turn: TurnIn) -> None:
        await self._post(f"/api/worker/sessions/{session_id}/turns", turn.model_dump_json())

    async def deliver(self, path: str, body: str) -> bool:
        """Post once. True when the control plane took it or refused it for good (4xx); False
        when it should be tried again: unreachable, overloaded, or its database is down."""
        try:
            resp = await self._http.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as e:
            logger.warning("posting %s failed: %r", path, e)
            return False
        if resp.status_code >= 500 or resp.status_code in _RETRY_STATUSES:
            logger.warning("posting %s: HTTP %d, will retry", path, resp.status_code)
            return False
        if resp.status_code >= 400:
            logger.warning("control plane refused %s: %s", path, _detail(resp))
        return True

    async def _post(self, path: str, body: str) -> None:
        # Recording is best effort: a control-plane hiccup must never break a live call.
        for attempt in range(3):
            try:
                resp = await self._http.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
                if resp.status_code < 500:
                    if resp.status_code >= 400:
                        logger.warning("control plane refused %s: HTTP %d", path, resp.status_code)
                    return
            except httpx.HTTPError as e:
                logger.warning("posting %s failed (attempt %d): %s", path, attempt + 1, e)
            await asyncio.sleep(0.25 * (attempt + 1))
        logger.error("gave up posting %s", path)

    async def upload_recording(
        self, session_id: str, path: Path, *, started_at: datetime, attempts: int = 3
    ) -> None:
        """Stream a call's Ogg/Opus recording to the control plane, retrying what may pass
        later (unreachable, 5xx). Raises ``ControlPlaneError`` when it was not stored."""
        url = f"/api/worker/sessions/{session_id}/recording"
        detail = "not tried"
        for attempt in range(attempts):
            try:
                resp = await self._http.put(
                    url,
                    params={"started_at": started_at.isoformat()},
                    content=_file_chunks(path),
                    headers={
                        "Content-Type": "audio/ogg",
                        "Content-Length": str(path.stat().st_size),
                    },
                    timeout=httpx.Timeout(60.0, connect=5.0),
                )
            except httpx.HTTPError as e:
                detail = f"control plane unreachable: {e!r}"
            else:
                if resp.status_code < 300:
                    return
                detail = _detail(resp)
                if resp.status_code < 500 and resp.status_code not in _RETRY_STATUSES:
                    break
            await asyncio.sleep(0.5 * (attempt + 1))
        raise ControlPlaneError(f"uploading the recording: {detail}")


async def _file_chunks(path: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, size):
            yield chunk


_RETRY_STATUSES = frozenset({408, 425, 429})


def _detail(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code}"
