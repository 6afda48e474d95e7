"""Phone calls in the worker: find the caller, register dial-in calls, keypad digits, hang-up.

livekit-sip joins a phone call to the room as a SIP participant whose attributes carry the
numbers (``sip.phoneNumber`` is the remote party, ``sip.trunkPhoneNumber`` ours). It converts
G.711 to and from the room's audio, so the voice pipeline is the same as for web sessions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, JobContext
from livekit.agents.utils.participant import wait_for_participant_attribute
from pydantic import ValidationError

from stimm.schema import JobMetadata, PhoneSessionCreate
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError

logger = logging.getLogger("stimm.worker")

JOIN_TIMEOUT_S = 60.0
"""How long a phone job waits for the call leg to be in the room."""
ANSWER_TIMEOUT_S = 180.0
"""How long an outbound job waits for the callee to answer (beyond the longest ringing time;
livekit-sip removes the callee from the room when it gives up or the dial is cancelled)."""
SIP_CALL_STATUS = "sip.callStatus"
"""livekit-sip's attribute for where a call is: ``dialing``, ``ringing``, ``active``, ..."""
DTMF_QUIET_S = 1.0
"""Keypad digits pressed within this long of each other are one input."""


class CallSetupError(RuntimeError):
    """The phone participant never joined, or the call could not be registered."""


@dataclass(frozen=True)
class PhoneCall:
    """The phone side of a session.

    Args:
        session_id: The Stimm session.
        participant: The SIP participant (the caller or callee).
        remote_number: The other party's number, when the carrier sent one.
        our_number: The Stimm number involved, when known.
        outbound: The control plane placed the call (answering-machine detection may run).
    """

    session_id: str
    participant: rtc.RemoteParticipant
    remote_number: str | None
    our_number: str | None
    outbound: bool = False


async def join_call(ctx: JobContext, meta: JobMetadata, client: ControlPlaneClient) -> PhoneCall:
    """Connect, wait for the SIP participant and return the call with its session id.

    A call routed by a SIP dispatch rule has no session yet: it is registered with the control
    plane here. Raises ``CallSetupError``.
    """
    await ctx.connect()
    try:
        participant = await asyncio.wait_for(
            ctx.wait_for_participant(kind=[rtc.ParticipantKind.PARTICIPANT_KIND_SIP]),
            timeout=JOIN_TIMEOUT_S,
        )
    except TimeoutError as e:
        raise CallSetupError("the phone participant never joined the room") from e
    except RuntimeError as e:  # livekit-agents: "room disconnected while waiting ..."
        raise CallSetupError("the room closed before the phone participant joined") from e
    if meta.outbound:
        # livekit-sip puts the callee in the room as soon as it dials: the call starts when they
        # answer (a dial cancelled, refused or unanswered takes them out of the room)
        try:
            await asyncio.wait_for(
                wait_for_participant_attribute(
                    ctx.room,
                    identity=participant.identity,
                    attribute=SIP_CALL_STATUS,
                    value="active",
                ),
                timeout=ANSWER_TIMEOUT_S,
            )
        except (RuntimeError, TimeoutError) as e:
            raise CallSetupError("the call was not answered") from e
    attrs = participant.attributes
    remote = attrs.get("sip.phoneNumber") or meta.caller
    ours = attrs.get("sip.trunkPhoneNumber")
    session_id = meta.session_id
    if session_id is None:
        try:
            call = PhoneSessionCreate(
                agent_id=meta.agent_id,
                room=ctx.room.name,
                caller=remote,
                callee=ours,
                sip_call_id=attrs.get("sip.callID"),
                participant_identity=participant.identity,
            )
            session_id = (await client.register_phone_session(call)).session_id
        except ValidationError as e:
            raise CallSetupError(f"the call cannot be registered: {e}") from e
        except ControlPlaneError as e:
            raise CallSetupError(str(e)) from e
    return PhoneCall(
        session_id=session_id,
        participant=participant,
        remote_number=remote,
        our_number=ours,
        outbound=meta.outbound,
    )


class KeypadInput:
    """Turns DTMF digits into user input the LLM sees (and the transcript records).

    Digits pressed close together are sent as one input, after ``quiet_s`` without a new digit
    or at once on ``#``. With ``identity``, only that participant's digits count (a warm
    transfer's colleague answers the agent with their keypad too).
    """

    def __init__(
        self,
        agent_session: AgentSession[Any],
        *,
        quiet_s: float = DTMF_QUIET_S,
        identity: str | None = None,
    ) -> None:
        self._agent_session = agent_session
        self._identity = identity
        self._quiet_s = quiet_s
        self._digits: list[str] = []
        self._flush: asyncio.TimerHandle | None = None

    def on_dtmf(self, dtmf: rtc.SipDTMF) -> None:
        if self._identity is not None and (
            dtmf.participant is None or dtmf.participant.identity != self._identity
        ):
            return
        self._digits.append(dtmf.digit)
        if self._flush is not None:
            self._flush.cancel()
        if dtmf.digit == "#":
            self.flush()
        else:
            self._flush = asyncio.get_running_loop().call_later(self._quiet_s, self.flush)

    def flush(self) -> None:
        self._flush = None
        digits, self._digits = "".join(self._digits), []
        if digits:
            self._agent_session.generate_reply(user_input=f"Keypad input: {digits}")


def attach(ctx: JobContext, agent_session: AgentSession[Any], call: PhoneCall) -> None:
    """Deliver keypad digits to the agent, and end the job when the call ends."""
    keypad = KeypadInput(agent_session, identity=call.participant.identity)
    ctx.room.on("sip_dtmf_received", keypad.on_dtmf)

    def on_disconnected(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == call.participant.identity:
            logger.info("session %s: the phone call ended", call.session_id)
            ctx.shutdown(reason="phone call ended")

    ctx.room.on("participant_disconnected", on_disconnected)


def hang_up(ctx: JobContext) -> None:
    """End the call: the room is deleted once the job has shut down, which hangs up the phone
    leg (as the ``end_call`` tool does)."""

    async def delete_room() -> None:
        await ctx.delete_room()

    ctx.add_shutdown_callback(delete_room)
    ctx.shutdown(reason="hung up")
