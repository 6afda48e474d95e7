"""The control plane's calls to LiveKit: rooms, agent dispatch and participant tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import aiohttp
from livekit import api
from livekit.protocol import models

from control_plane.core.config import Settings
from control_plane.errors import ControlPlaneError, LiveKitRejected, LiveKitUnavailable
from stimm import tracing
from stimm.schema import AGENT_NAME, JobMetadata

logger = logging.getLogger("stimm.control_plane")

# A room nobody joins closes once the join token could no longer be used; a room everyone has
# left closes shortly after, which also ends the agent's job.
DEPARTURE_TIMEOUT_S = 20
REQUEST_TIMEOUT_S = 10.0
ASSIGNMENT_POLL_S = 0.2

T = TypeVar("T")


AssignmentCheck = Callable[[str], Awaitable[str | None]]
"""Gives the id of the worker running a session id, if one reported it."""
AssignmentWait = Callable[[str, float], Awaitable[str | None]]
"""Waits up to the given seconds for a worker to report the session id; gives its id."""

DispatchHook = Callable[[str], Awaitable[None]]
"""Records the token of a dispatch about to be sent (``JobMetadata.dispatch``)."""


def livekit_error(url: str, e: Exception, action: str | None = None) -> Exception:
    """The control plane's error for a failed LiveKit API call: ``LiveKitUnavailable`` when
    LiveKit is unreachable, timed out or failed (5xx), ``LiveKitRejected`` when it refused (4xx);
    any other exception is returned as it is. The one mapping of LiveKit errors.

    Args:
        url: The LiveKit server's URL, named in the message.
        e: What the LiveKit API client raised.
        action: What was asked ("create the room"), named in the message when given.
    """
    doing = f" to {action}" if action else ""
    if isinstance(e, api.TwirpError):
        detail = f"{e.code} {e.message}".rstrip()
        if e.status >= 500:
            return LiveKitUnavailable(f"LiveKit at {url} failed{doing}: {detail}")
        return LiveKitRejected(f"LiveKit at {url} refused{doing}: {detail}")
    if isinstance(e, aiohttp.ClientError | TimeoutError | OSError):
        could_not = f", could not {action}" if action else ""
        return LiveKitUnavailable(
            f"LiveKit at {url} is unreachable{could_not} ({type(e).__name__})"
        )
    return e


class NoWorkerAvailable(LiveKitUnavailable):
    """No worker took the session's job within the dispatch timeout (all full, or none)."""


@dataclass(frozen=True)
class ParticipantToken:
    jwt: str
    expires_at: datetime


class LiveKit:
    """LiveKit server API client configured from the control plane settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        pool = settings.pool
        self._dispatch_timeout_s = pool.dispatch_timeout_s
        self._attempt_s = pool.dispatch_attempt_s
        self._assignment_check: AssignmentCheck | None = None
        self._assignment_wait: AssignmentWait | None = None
        self._url = settings.livekit_url
        self._api_key = settings.livekit_api_key
        self._api_secret = settings.livekit_api_secret.get_secret_value()
        self._token_ttl = timedelta(seconds=settings.session_token_ttl_s)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)

    def set_assignment_check(
        self, check: AssignmentCheck | None, wait: AssignmentWait | None = None
    ) -> None:
        """Let dispatch verification ask the worker registry which worker runs a session, and
        between two reads be woken by the heartbeat of the worker that took it."""
        self._assignment_check = check
        self._assignment_wait = wait

    async def create_room_and_dispatch(
        self, room: str, metadata: JobMetadata, on_dispatch: DispatchHook | None = None
    ) -> str:
        """Create ``room``, dispatch the Stimm agent into it, and wait until a worker has it.

        Each dispatch carries a new token in ``metadata.dispatch``, given to ``on_dispatch``
        before it is sent: the session is recorded as answerable by that dispatch only.
        Returns the id of the worker that took the job. Raises ``NoWorkerAvailable`` (no worker
        took it in time), ``LiveKitUnavailable`` (unreachable, timeout, 5xx) or
        ``LiveKitRejected`` (4xx).
        A room left behind by a failed dispatch is closed by LiveKit's empty timeout.
        The job's spans join the current trace (``metadata.trace_context``), if one is exported.
        """
        trace_context = tracing.current_trace_context() or None
        metadata = metadata.model_copy(update={"trace_context": trace_context})
        async with api.LiveKitAPI(
            self._url, self._api_key, self._api_secret, timeout=self._timeout
        ) as lkapi:
            await self._call(
                "create the room",
                lkapi.room.create_room(
                    api.CreateRoomRequest(
                        name=room,
                        empty_timeout=int(self._token_ttl.total_seconds()),
                        departure_timeout=DEPARTURE_TIMEOUT_S,
                    )
                ),
            )
            worker_id = await self._dispatch_until_assigned(lkapi, room, metadata, on_dispatch)
        logger.info("room %s created, agent %s taken by worker %s", room, AGENT_NAME, worker_id)
        return worker_id

    async def _dispatch_until_assigned(
        self,
        lkapi: api.LiveKitAPI,
        room: str,
        metadata: JobMetadata,
        on_dispatch: DispatchHook | None,
    ) -> str:
        """Dispatch, and dispatch again until a worker has the job; returns its worker id.

        livekit-server offers a dispatch to the registered workers once: when none is
        available at that moment (all at their load threshold, or none registered) it drops
        the job and never retries, leaving a room nobody answers. So the dispatch is checked
        (``_wait_assigned``) and, while unassigned after ``STIMM_DISPATCH_ATTEMPT_TIMEOUT``,
        withdrawn and created again, for at most ``STIMM_DISPATCH_TIMEOUT`` seconds. A job of
        a withdrawn dispatch that a slow worker did take finds its token outdated when it
        claims the session, and leaves: the caller never gets two agents.

        Raises ``NoWorkerAvailable`` when no worker took it in that time.
        """
        deadline = time.monotonic() + self._dispatch_timeout_s
        attempts = 0
        while True:
            attempts += 1
            attempt = metadata.model_copy(update={"dispatch": secrets.token_hex(8)})
            if on_dispatch is not None:
                await on_dispatch(attempt.dispatch or "")
            dispatch = await self._call(
                "dispatch the agent",
                lkapi.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=AGENT_NAME, room=room, metadata=attempt.model_dump_json()
                    )
                ),
            )
            attempt_end = min(deadline, time.monotonic() + self._attempt_s)
            worker_id = await self._wait_assigned(lkapi, room, metadata.session_id, attempt_end)
            if worker_id:
                return worker_id
            # withdrawn before the next try, so a late assignment cannot put two agents in
            await self._call(
                "withdraw an unassigned dispatch",
                lkapi.agent_dispatch.delete_dispatch(dispatch.id, room),
            )
            if time.monotonic() >= deadline:
                raise NoWorkerAvailable(
                    f"no agent worker took the session within {self._dispatch_timeout_s:g} s "
                    f"({attempts} dispatches): every worker is full or none is running"
                )
            logger.warning(
                "room %s: no worker took dispatch %s; dispatching again", room, dispatch.id
            )

    async def _wait_assigned(
        self, lkapi: api.LiveKitAPI, room: str, session_id: str | None, until: float
    ) -> str | None:
        while True:
            if worker_id := await self._assigned_now(lkapi, room, session_id):
                return worker_id
            if time.monotonic() >= until:
                return None
            if self._assignment_wait is not None and session_id is not None:
                if worker_id := await self._assignment_wait(session_id, ASSIGNMENT_POLL_S):
                    return worker_id
            else:
                await asyncio.sleep(ASSIGNMENT_POLL_S)

    async def _assigned_now(
        self, lkapi: api.LiveKitAPI, room: str, session_id: str | None
    ) -> str | None:
        # livekit-server 1.13 leaves AgentDispatch.state.jobs empty, so assignment is seen
        # from the worker side: its heartbeat lists the session (sent as soon as the job
        # launches), or its agent has already joined the room.
        if self._assignment_check is not None and session_id is not None:
            try:
                worker_id = await self._assignment_check(session_id)
            except ControlPlaneError as e:
                logger.debug("worker registry not readable: %s", e)
                worker_id = None
            if worker_id:
                return worker_id
        for p in await self._participants(lkapi, room):
            if p.kind == models.ParticipantInfo.Kind.AGENT:
                return p.identity
        return None

    async def assigned_worker(self, room: str, session_id: str) -> str | None:
        """The worker (or agent identity) answering ``session_id`` right now, if any: its
        heartbeat lists the session or its agent is in ``room`` (a missing room has none)."""
        async with api.LiveKitAPI(
            self._url, self._api_key, self._api_secret, timeout=self._timeout
        ) as lkapi:
            try:
                return await self._assigned_now(lkapi, room, session_id)
            except LiveKitRejected:  # not_found: the room is gone
                return None

    async def agent_in_room(self, room: str) -> bool:
        """Whether an agent participant is connected to ``room`` (a missing room has none)."""
        present = await self._participants_if_room(room)
        return any(p.kind == models.ParticipantInfo.Kind.AGENT for p in present)

    async def call_in_room(self, room: str, caller: str | None, since: float) -> bool:
        """Whether ``room`` has its caller (participant ``caller``; any participant that is not
        an agent when ``None``) and an agent, both joined at or after ``since`` (Unix seconds).

        LiveKit lists a room's participants from the store its nodes share: after the room's
        node died, those that were on it stay listed until they rejoin, with their old join
        time."""
        agent = models.ParticipantInfo.Kind.AGENT
        present = [
            p
            for p in await self._participants_if_room(room)
            if max(p.joined_at_ms, p.joined_at * 1000) >= since * 1000
        ]
        return any(p.kind == agent for p in present) and any(
            p.identity == caller if caller else p.kind != agent for p in present
        )

    async def sip_call_active(self, room: str, identity: str) -> bool:
        """Whether the phone participant ``identity`` in ``room`` is in an answered call
        (livekit-sip's ``sip.callStatus`` is ``active``; it is in the room from the dial on)."""
        return any(
            p.identity == identity and p.attributes.get("sip.callStatus") == "active"
            for p in await self._participants_if_room(room)
        )

    async def _participants_if_room(self, room: str) -> list[models.ParticipantInfo]:
        """The participants of ``room``; none when the room is gone."""
        async with api.LiveKitAPI(
            self._url, self._api_key, self._api_secret, timeout=self._timeout
        ) as lkapi:
            try:
                return await self._participants(lkapi, room)
            except LiveKitRejected:  # not_found: the room is gone
                return []

    async def _participants(self, lkapi: api.LiveKitAPI, room: str) -> list[models.ParticipantInfo]:
        found = await self._call(
            "list the room's participants",
            lkapi.room.list_participants(api.ListParticipantsRequest(room=room)),
        )
        return list(found.participants)

    async def delete_room(self, room: str) -> None:
        """Close ``room``: its participants (an agent waiting there) leave; a missing room is
        fine."""
        async with api.LiveKitAPI(
            self._url, self._api_key, self._api_secret, timeout=self._timeout
        ) as lkapi:
            with contextlib.suppress(LiveKitRejected):
                await self._call(
                    "delete the room", lkapi.room.delete_room(api.DeleteRoomRequest(room=room))
                )

    def participant_token(
        self, room: str, identity: str, ttl: timedelta | None = None
    ) -> ParticipantToken:
        """A token that lets ``identity`` join, publish and subscribe in ``room`` only."""
        ttl = ttl or self._token_ttl
        # The JWT's exp has whole seconds and is computed inside to_jwt(); this matches it to
        # within a second.
        expires_at = (datetime.now(UTC) + ttl).replace(microsecond=0)
        token = (
            api.AccessToken(self._api_key, self._api_secret)
            .with_identity(identity)
            .with_ttl(ttl)
            .with_grants(
                api.VideoGrants(
                    room_join=True,
                    room=room,
                    can_publish=True,
                    can_subscribe=True,
                    can_publish_data=True,
                )
            )
        )
        return ParticipantToken(jwt=token.to_jwt(), expires_at=expires_at)

    async def _call(self, action: str, request: Awaitable[T]) -> T:
        try:
            return await request
        except (api.TwirpError, aiohttp.ClientError, TimeoutError, OSError) as e:
            raise livekit_error(self._url, e, action) from e
