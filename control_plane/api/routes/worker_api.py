"""Every worker-only endpoint (``/api/worker/...``, the worker token): read an agent's config,
register a dial-in call, claim a session, report its events and turns, upload its recording,
phone a warm transfer's target, retrieve from a knowledge base, and the pool's heartbeats. The
worker reaches them through ``worker/control_plane_client.py``. Over 300 lines on purpose: all
worker-facing routes live in this one module, behind one token check.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime
from sqlalchemy.exc import IntegrityError
from starlette.requests import ClientDisconnect

from control_plane import crud
from control_plane.api.deps import (
    CacheDep,
    DbDep,
    KnowledgeBaseDep,
    KnowledgeDep,
    PostCallDep,
    RecordingsDep,
    RegistryDep,
    SecretBoxDep,
    SettingsDep,
    WorkerAuthDep,
)
from control_plane.api.routes.agents import agent_not_found
from control_plane.api.routes.knowledge_bases import QUERY_RESPONSES, query
from control_plane.api.routes.recordings import store_unavailable
from control_plane.api.routes.sessions import session_not_found
from control_plane.api.routes.workers import registry_unavailable
from control_plane.errors import (
    LiveKitError,
    LiveKitUnavailable,
    RecordingStoreError,
    SecretDecryptionError,
    SecretMissing,
    SessionClaimed,
    SessionStateConflict,
)
from control_plane.models import SessionPublic, TurnPublic
from control_plane.postcall.pii import redact
from control_plane.recordings.audio import NotARecording
from control_plane.recordings.service import UploadTooLarge
from control_plane.recordings.store import CONTENT_TYPE
from control_plane.telephony import crud as phone_crud
from control_plane.telephony import service as phone_service
from control_plane.worker_config import worker_agent_config
from control_plane.workers.registry import RegistryUnavailable
from stimm.schema import (
    KnowledgeQuery,
    KnowledgeQueryResult,
    PhoneSessionCreate,
    PhoneSessionCreated,
    RecordingPolicy,
    SessionClaim,
    SessionEvent,
    TransferLeg,
    TransferLegCreate,
    TurnIn,
    WarmTransferTool,
    WorkerAgentConfig,
    WorkerHeartbeat,
)

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/worker", tags=["worker"], dependencies=[WorkerAuthDep])


@router.get("/agents/{agent_id}")
async def get_agent_config(
    db: DbDep, cache: CacheDep, box: SecretBoxDep, agent_id: str
) -> WorkerAgentConfig:
    """The config the worker runs a session with, and the decrypted secrets its providers need.

    The only route that returns secret values: the config's ``{"secret": NAME}`` references
    (API keys, webhook header values) come back as the values themselves. The worker fetches
    it once per session, so an update reaches the next session only.
    """
    config = await cache.get(agent_id)
    if config is None:
        agent = await crud.get_agent(db, agent_id)
        if agent is None:
            raise agent_not_found(agent_id)
        config = agent.to_config()
        await cache.put(agent_id, config)
    try:
        return await worker_agent_config(db, box, agent_id, config)
    except SecretDecryptionError as e:
        logger.error("agent %s: %s", agent_id, e)
        raise HTTPException(status_code=status.HTTP_500_INTERNAL_SERVER_ERROR, detail=str(e)) from e
    except SecretMissing as e:
        logger.error("%s", e)
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(e)) from e


@router.post(
    "/sessions/{session_id}/claim",
    responses={409: {"description": "Another job answers the session, or it has ended"}},
)
async def claim_session(db: DbDep, session_id: str, claim: SessionClaim) -> SessionPublic:
    """Let a job answer a session: the first job to claim it does, any other must leave."""
    try:
        voice_session = await crud.claim_session(db, session_id, claim)
    except SessionClaimed as e:
        logger.warning("job %s refused: %s", claim.job_id, e)
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(e)) from e
    if voice_session is None:
        raise session_not_found(session_id)
    return SessionPublic.model_validate(voice_session, from_attributes=True)


@router.post("/sessions/{session_id}/events")
async def post_session_event(
    db: DbDep, postcall: PostCallDep, session_id: str, event: SessionEvent
) -> SessionPublic:
    """Report that a session became active, completed or failed (which queues its webhooks and
    its analysis)."""
    voice_session = await crud.get_session(db, session_id)
    if voice_session is None:
        raise session_not_found(session_id)
    previous = voice_session.status
    try:
        voice_session = await crud.apply_session_event(db, voice_session, event)
    except SessionStateConflict as e:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(e)) from e
    if event.answered_by is not None:
        await phone_crud.set_answered_by(db, session_id, event.answered_by)
    if voice_session.status != previous:
        logger.info("session %s: %s -> %s", session_id, previous, voice_session.status)
    public = SessionPublic.model_validate(voice_session, from_attributes=True)
    if (
        voice_session.status == event.status
    ):  # a repeated report too: whatever was not queued yet is
        await postcall.session_reported(db, voice_session)
    return public


@router.post(
    "/sessions/{session_id}/transfer-legs",
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {"description": "Not a live phone call, or outbound calling is not configured"},
        422: {"description": "The target is not one of the agent's warm-transfer targets"},
        502: {"description": "The target refused, was busy or did not answer"},
        503: {"description": "LiveKit is unreachable"},
    },
)
async def create_transfer_leg(
    db: DbDep, settings: SettingsDep, session_id: str, leg: TransferLegCreate
) -> TransferLeg:
    """Phone a warm transfer's target into the session's room; returns once they answer."""
    voice_session = await crud.get_session(db, session_id)
    if voice_session is None:
        raise session_not_found(session_id)
    if voice_session.channel != "phone" or voice_session.status not in ("created", "active"):
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"Session {session_id} is not a live phone call",
        )
    agent = await crud.get_agent(db, voice_session.agent_id)
    tools = agent.to_config().tools if agent is not None else []
    tool = next(
        (t for t in tools if isinstance(t, WarmTransferTool) and t.target == leg.target), None
    )
    if tool is None:  # the worker may only phone the numbers its agent was configured with
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail="The target is not one of the agent's warm-transfer targets",
        )
    telephony = settings.telephony
    if not telephony.outbound_address:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail="Outbound calling is not configured (set STIMM_SIP_OUTBOUND_ADDRESS)",
        )
    try:
        info = await phone_service.dial(
            settings,
            telephony,
            to=leg.target,
            room=voice_session.room,
            identity=leg.participant_identity,
            ringing_timeout_s=tool.ringing_timeout_s,
        )
    except phone_service.DialFailed as e:
        logger.info("session %s: transfer leg not answered: %s", session_id, e)
        raise HTTPException(status_code=status.HTTP_502_BAD_GATEWAY, detail=str(e)) from e
    except LiveKitError as e:
        raise HTTPException(
            status_code=(
                status.HTTP_503_SERVICE_UNAVAILABLE
                if isinstance(e, LiveKitUnavailable)
                else status.HTTP_502_BAD_GATEWAY
            ),
            detail=str(e),
        ) from e
    logger.info("session %s: transfer leg answered", session_id)
    return TransferLeg(
        participant_identity=leg.participant_identity, sip_call_id=info.sip_call_id or None
    )


@router.post(
    "/sessions/{session_id}/turns",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A turn with this key was already recorded; it is returned"}},
)
async def post_turn(db: DbDep, session_id: str, turn_in: TurnIn, response: Response) -> TurnPublic:
    """Record a finished turn; it gets the next sequence number of the session.

    Posting a turn again with the same ``key`` (a retry) stores nothing and answers 200. An
    agent with ``redact_pii`` has its turns stored with phone numbers, emails and card numbers
    masked.
    """
    voice_session = await crud.get_session(db, session_id)
    if voice_session is None:
        raise session_not_found(session_id)
    agent = await crud.get_agent(db, voice_session.agent_id)
    if agent is not None and agent.redact_pii:
        turn_in = turn_in.model_copy(update={"text": redact(turn_in.text)})
    turn, created = await crud.add_turn(db, session_id, turn_in)
    if turn is None:
        raise session_not_found(session_id)
    if created:
        logger.debug("session %s: turn %d (%s) recorded", session_id, turn.seq, turn.role)
    else:
        response.status_code = status.HTTP_200_OK
    return TurnPublic.model_validate(turn, from_attributes=True)


@router.put(
    "/sessions/{session_id}/recording",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra={"requestBody": {"content": {CONTENT_TYPE: {}}, "required": True}},
    responses={
        409: {"description": "The session's agent does not record its calls"},
        413: {"description": "Larger than STIMM_MAX_RECORDING_BYTES"},
        415: {"description": "Not sent as audio/ogg"},
        422: {"description": "Not an Ogg/Opus file"},
    },
)
async def put_recording(
    db: DbDep,
    recordings: RecordingsDep,
    request: Request,
    session_id: str,
    started_at: Annotated[
        AwareDatetime, Query(description="Wall time of the file's first sample (ISO 8601)")
    ],
) -> None:
    """Upload a finished session's recording (Ogg/Opus body, streamed); replaces an earlier one."""
    voice_session = await crud.get_session(db, session_id)
    if voice_session is None:
        raise session_not_found(session_id)
    agent = await crud.get_agent(db, voice_session.agent_id)
    policy = RecordingPolicy.model_validate(agent.recording if agent else {})
    if not policy.enabled:
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"Agent {voice_session.agent_id} does not record its calls",
        )
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != CONTENT_TYPE:
        raise HTTPException(
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Send the recording as {CONTENT_TYPE}",
        )
    try:
        path = await recordings.receive(request.stream())
    except UploadTooLarge as e:
        raise HTTPException(
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"The recording is larger than the limit of {recordings.settings.max_bytes} "
            "bytes (STIMM_MAX_RECORDING_BYTES)",
        ) from e
    except ClientDisconnect as e:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Upload cut off") from e
    try:
        row = await recordings.save(
            db, session_id, path, started_at=started_at, retention_days=policy.retention_days
        )
    except NotARecording as e:
        raise HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from e
    except RecordingStoreError as e:
        raise store_unavailable(e) from e
    logger.info("session %s: recording stored (%.1f s)", session_id, row.duration_s)


@router.post("/sessions", status_code=status.HTTP_201_CREATED)
async def register_phone_session(db: DbDep, body: PhoneSessionCreate) -> PhoneSessionCreated:
    """Register a call that a SIP dispatch rule routed to an agent; idempotent per room."""
    if await crud.get_agent(db, body.agent_id) is None:
        raise agent_not_found(body.agent_id)
    existing = await phone_crud.get_call_by_room(db, body.room)
    if existing is None:
        try:
            voice_session, call = await phone_crud.create_phone_call(
                db,
                agent_id=body.agent_id,
                direction="inbound",
                room=body.room,
                caller=body.caller,
                callee=body.callee,
                sip_call_id=body.sip_call_id,
                participant_identity=body.participant_identity,
            )
        except IntegrityError as e:  # the room already has a (non-phone) session
            await db.rollback()
            raise HTTPException(
                status_code=status.HTTP_409_CONFLICT,
                detail=f"Room {body.room} already has a session",
            ) from e
        logger.info("inbound call %s registered (session %s)", call.id, voice_session.id)
    else:
        call, voice_session = existing
    return PhoneSessionCreated(session_id=voice_session.id, call_id=call.id)


@router.post("/knowledge-bases/{kb_id}/query", responses=QUERY_RESPONSES)
async def worker_query_knowledge_base(
    knowledge: KnowledgeDep, kb: KnowledgeBaseDep, body: KnowledgeQuery
) -> KnowledgeQueryResult:
    """Retrieval for a turn in progress (the worker's credential; same path as the API's)."""
    return await query(knowledge, kb, body)


@router.post("/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
async def post_heartbeat(registry: RegistryDep, hb: WorkerHeartbeat) -> Response:
    """A worker reports its load and sessions; it stays listed for STIMM_WORKER_TTL."""
    try:
        await registry.put(hb)
    except RegistryUnavailable as e:
        raise registry_unavailable(e) from e
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/workers/{worker_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_worker(registry: RegistryDep, worker_id: str) -> Response:
    """A worker that finished draining leaves the pool."""
    try:
        await registry.remove(worker_id)
    except RegistryUnavailable as e:
        raise registry_unavailable(e) from e
    logger.info("worker %s left the pool", worker_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
