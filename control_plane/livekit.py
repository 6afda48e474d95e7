"""The control plane's calls to LiveKit: rooms, agent dispatch and participant tokens."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from livekit import api

from control_plane.core.config import Settings
from control_plane.errors import LiveKitRejected, LiveKitUnavailable
from stimm.schema import AGENT_NAME, JobMetadata

logger = logging.getLogger("stimm.control_plane")

# A room nobody joins closes once the join token could no longer be used; a room everyone has
# left closes shortly after, which also ends the agent's job.
DEPARTURE_TIMEOUT_S = 20
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ParticipantToken:
    jwt: str
    expires_at: datetime


class LiveKit:
    """LiveKit server API client configured from the control plane settings."""

    def __init__(self, settings: Settings, *, request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self._url = settings.livekit_url
        self._api_key = settings.livekit_api_key
        self._api_secret = settings.livekit_api_secret.get_secret_value()
        self._token_ttl = timedelta(seconds=settings.session_token_ttl_s)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)

    async def create_room_and_dispatch(self, room: str, metadata: JobMetadata) -> None:
        """Create ``room`` and explicitly dispatch the Stimm agent into it.

        Raises ``LiveKitUnavailable`` (unreachable, timeout, 5xx) or ``LiveKitRejected`` (4xx).
        A room left behind by a failed dispatch is closed by LiveKit's empty timeout.
        """
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
            await self._call(
                "dispatch the agent",
                lkapi.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=AGENT_NAME, room=room, metadata=metadata.model_dump_json()
                    )
                ),
            )
        logger.info("room %s created, agent %s dispatched", room, AGENT_NAME)

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

    async def _call(self, action: str, request: Awaitable[object]) -> None:
        try:
            await request
        except api.TwirpError as e:
            if e.status >= 500:
                raise LiveKitUnavailable(
                    f"LiveKit at {self._url} failed to {action}: {e.code} {e.message}".rstrip()
                ) from e
            raise LiveKitRejected(
                f"LiveKit at {self._url} refused to {action}: {e.code} {e.message}".rstrip()
            ) from e
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise LiveKitUnavailable(
                f"LiveKit at {self._url} is unreachable, could not {action} ({type(e).__name__})"
            ) from e
