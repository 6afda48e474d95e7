"""Idempotent provisioning of LiveKit SIP: inbound trunks, dispatch rules, the outbound trunk.

Every ``ensure_*`` function finds its object by name (names start with ``stimm:``), updates it
in place when it differs and creates it otherwise, so running it twice changes nothing.

Each phone number gets its own inbound trunk and its own dispatch rule (bound to that trunk
only): a call to the number creates a fresh room ``stimm-phone-…`` and dispatches the Stimm agent
into it with ``JobMetadata(agent_id=…, channel="phone")``. A call to a number that has no trunk
is refused by livekit-sip.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.duration_pb2 import Duration
from livekit import api

from stimm.schema import AGENT_NAME, JobMetadata

logger = logging.getLogger("stimm.sip")

NAME_PREFIX = "stimm:"
ROOM_PREFIX = "stimm-phone-"
OUTBOUND_TRUNK_NAME = f"{NAME_PREFIX}outbound"
UNASSIGNED_TRUNK_NAME = f"{NAME_PREFIX}unassigned"
# A phone room closes soon after the caller hangs up (which also ends the agent's job).
PHONE_ROOM_EMPTY_TIMEOUT_S = 30
PHONE_ROOM_DEPARTURE_TIMEOUT_S = 5


@dataclass(frozen=True)
class InboundNumber:
    """A phone number that rings an agent.

    Args:
        number: The called number as it arrives in the SIP request URI (E.164 such as
            ``+15550100``, or any user part the carrier sends).
        agent_id: The Stimm agent that answers.
        allowed_addresses: IPs or CIDR ranges the calls may come from; empty means any.
        auth_username: With ``auth_password``, callers must answer a SIP digest challenge.
        auth_password: The digest password.
    """

    number: str
    agent_id: str
    allowed_addresses: tuple[str, ...] = field(default_factory=tuple)
    auth_username: str = ""
    auth_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Provisioned:
    """The LiveKit ids behind one inbound number."""

    trunk_id: str
    dispatch_rule_id: str


def _name(number: str) -> str:
    return f"{NAME_PREFIX}{number}"


def _inbound_trunk(spec: InboundNumber) -> api.SIPInboundTrunkInfo:
    return api.SIPInboundTrunkInfo(
        name=_name(spec.number),
        numbers=[spec.number],
        allowed_addresses=list(spec.allowed_addresses),
        auth_username=spec.auth_username,
        auth_password=spec.auth_password,
    )


def _dispatch_rule(spec: InboundNumber, trunk_id: str) -> api.SIPDispatchRuleInfo:
    # only what is set, so rules made before a field was added stay equal
    metadata = JobMetadata(agent_id=spec.agent_id, channel="phone").model_dump_json(
        exclude_defaults=True
    )
    return api.SIPDispatchRuleInfo(
        name=_name(spec.number),
        trunk_ids=[trunk_id],
        rule=api.SIPDispatchRule(
            dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=ROOM_PREFIX)
        ),
        room_config=api.RoomConfiguration(
            empty_timeout=PHONE_ROOM_EMPTY_TIMEOUT_S,
            departure_timeout=PHONE_ROOM_DEPARTURE_TIMEOUT_S,
            agents=[api.RoomAgentDispatch(agent_name=AGENT_NAME, metadata=metadata)],
        ),
        metadata=metadata,
    )


def _same(a: object, b: object, fields: tuple[str, ...]) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in fields)


SipObject = TypeVar(
    "SipObject", api.SIPInboundTrunkInfo, api.SIPOutboundTrunkInfo, api.SIPDispatchRuleInfo
)


async def _ensure(
    what: str,
    existing: SipObject | None,
    wanted: SipObject,
    *,
    fields: tuple[str, ...],
    id_field: str,
    create: Callable[[SipObject], Awaitable[SipObject]],
    update: Callable[[str, SipObject], Awaitable[SipObject]],
) -> str:
    """Create ``wanted``, or update ``existing`` in place where one of ``fields`` differs;
    returns the object's id (its ``id_field``)."""
    if existing is None:
        created_id = str(getattr(await create(wanted), id_field))
        logger.info("created %s %s", what, created_id)
        return created_id
    existing_id = str(getattr(existing, id_field))
    if not _same(existing, wanted, fields):
        setattr(wanted, id_field, existing_id)
        await update(existing_id, wanted)
        logger.info("updated %s %s", what, existing_id)
    return existing_id


_TRUNK_FIELDS = ("numbers", "allowed_addresses", "auth_username", "auth_password")
_RULE_FIELDS = ("trunk_ids", "rule", "room_config", "metadata")


async def _inbound_trunks(lk: api.LiveKitAPI) -> dict[str, api.SIPInboundTrunkInfo]:
    listed = await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())
    return {t.name: t for t in listed.items if t.name.startswith(NAME_PREFIX)}


async def _dispatch_rules(lk: api.LiveKitAPI) -> dict[str, api.SIPDispatchRuleInfo]:
    listed = await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
    return {r.name: r for r in listed.items if r.name.startswith(NAME_PREFIX)}


async def ensure_inbound_trunk(lk: api.LiveKitAPI, spec: InboundNumber) -> str:
    """Create or update the inbound trunk that accepts calls to ``spec.number``; its id."""
    wanted = _inbound_trunk(spec)
    return await _ensure(
        "inbound trunk",
        (await _inbound_trunks(lk)).get(wanted.name),
        wanted,
        fields=_TRUNK_FIELDS,
        id_field="sip_trunk_id",
        create=lambda t: lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=t)),
        update=lk.sip.update_inbound_trunk,
    )


async def ensure_dispatch_rule(lk: api.LiveKitAPI, spec: InboundNumber, trunk_id: str) -> str:
    """Create or update the rule that puts calls on ``trunk_id`` in a new room with the agent."""
    wanted = _dispatch_rule(spec, trunk_id)
    return await _ensure(
        "dispatch rule",
        (await _dispatch_rules(lk)).get(wanted.name),
        wanted,
        fields=_RULE_FIELDS,
        id_field="sip_dispatch_rule_id",
        create=lambda r: lk.sip.create_dispatch_rule(
            api.CreateSIPDispatchRuleRequest(dispatch_rule=r)
        ),
        update=lk.sip.update_dispatch_rule,
    )


async def ensure_inbound_number(lk: api.LiveKitAPI, spec: InboundNumber) -> Provisioned:
    """Make calls to ``spec.number`` reach ``spec.agent_id``: trunk, then dispatch rule."""
    trunk_id = await ensure_inbound_trunk(lk, spec)
    rule_id = await ensure_dispatch_rule(lk, spec, trunk_id)
    return Provisioned(trunk_id=trunk_id, dispatch_rule_id=rule_id)


async def remove_inbound_number(lk: api.LiveKitAPI, number: str) -> bool:
    """Delete the dispatch rule and trunk of ``number``; False when there was none."""
    name = _name(number)
    removed = False
    rule = (await _dispatch_rules(lk)).get(name)
    if rule is not None:
        await lk.sip.delete_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
        )
        removed = True
    trunk = (await _inbound_trunks(lk)).get(name)
    if trunk is not None:
        await lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
        removed = True
    if removed:
        logger.info("removed the inbound trunk and dispatch rule of a phone number")
    return removed


async def sync_inbound_numbers(lk: api.LiveKitAPI, specs: list[InboundNumber]) -> None:
    """Make LiveKit's ``stimm:`` inbound trunks and rules exactly ``specs``."""
    wanted = {_name(s.number) for s in specs}
    for spec in specs:
        await ensure_inbound_number(lk, spec)
    stale = (set(await _dispatch_rules(lk)) | set(await _inbound_trunks(lk))) - wanted
    for name in stale - {OUTBOUND_TRUNK_NAME, UNASSIGNED_TRUNK_NAME}:
        await remove_inbound_number(lk, name.removeprefix(NAME_PREFIX))


@dataclass(frozen=True)
class OutboundTrunk:
    """Where outbound calls go.

    Args:
        address: The SIP provider or PBX, ``host[:port]``.
        number: The caller id presented (the From user).
        transport: ``udp``, ``tcp`` or ``tls``; empty lets LiveKit choose.
        auth_username: Digest credentials the provider asks for, if any.
        auth_password: The digest password.
    """

    address: str
    number: str
    transport: str = ""
    auth_username: str = ""
    auth_password: str = field(default="", repr=False)


_TRANSPORTS = {
    "": api.SIPTransport.SIP_TRANSPORT_AUTO,
    "udp": api.SIPTransport.SIP_TRANSPORT_UDP,
    "tcp": api.SIPTransport.SIP_TRANSPORT_TCP,
    "tls": api.SIPTransport.SIP_TRANSPORT_TLS,
}
_OUTBOUND_FIELDS = ("address", "numbers", "transport", "auth_username", "auth_password")


async def ensure_outbound_trunk(lk: api.LiveKitAPI, spec: OutboundTrunk) -> str:
    """Create or update Stimm's outbound trunk; its id."""
    wanted = api.SIPOutboundTrunkInfo(
        name=OUTBOUND_TRUNK_NAME,
        address=spec.address,
        numbers=[spec.number],
        transport=_TRANSPORTS[spec.transport.lower()],
        auth_username=spec.auth_username,
        auth_password=spec.auth_password,
    )
    listed = await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
    return await _ensure(
        "outbound trunk",
        next((t for t in listed.items if t.name == OUTBOUND_TRUNK_NAME), None),
        wanted,
        fields=_OUTBOUND_FIELDS,
        id_field="sip_trunk_id",
        create=lambda t: lk.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=t)),
        update=lk.sip.update_outbound_trunk,
    )


async def dial(
    lk: api.LiveKitAPI,
    *,
    trunk_id: str,
    to: str,
    room: str,
    identity: str,
    ringing_timeout_s: float = 30.0,
) -> api.SIPParticipantInfo:
    """Have livekit-sip call ``to`` through ``trunk_id`` and put the callee in ``room``.

    Returns once the callee answered. Raises ``livekit.api.SipCallError`` (with the SIP status)
    when the call is refused, busy or not answered.
    """
    return await lk.sip.create_sip_participant(
        api.CreateSIPParticipantRequest(
            sip_trunk_id=trunk_id,
            sip_call_to=to,
            room_name=room,
            participant_identity=identity,
            participant_name="Phone",
            wait_until_answered=True,
            ringing_timeout=Duration(seconds=int(ringing_timeout_s)),
        )
    )


async def ensure_unassigned_trunk(lk: api.LiveKitAPI, secret: str) -> str:
    """Make calls to numbers with no agent fail at once instead of ringing forever.

    livekit-server (1.13) answers "no dispatch rule" with *drop*, which leaves the caller
    ringing until its own timer fires. A catch-all trunk (no numbers: numbers that have their own
    trunk still go there) guarded by digest credentials that nobody is given makes livekit-sip
    refuse the INVITE with a final 401/407 instead, logged as an unauthenticated inbound call.

    Args:
        lk: The LiveKit API client.
        secret: Any server-side secret; the password is derived from it, so that running this
            twice changes nothing.
    """
    password = hashlib.sha256(f"stimm-unassigned:{secret}".encode()).hexdigest()
    wanted = api.SIPInboundTrunkInfo(
        name=UNASSIGNED_TRUNK_NAME, auth_username="stimm-unassigned", auth_password=password
    )
    return await _ensure(
        "catch-all trunk for unassigned numbers",
        (await _inbound_trunks(lk)).get(UNASSIGNED_TRUNK_NAME),
        wanted,
        fields=_TRUNK_FIELDS,
        id_field="sip_trunk_id",
        create=lambda t: lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=t)),
        update=lk.sip.update_inbound_trunk,
    )
