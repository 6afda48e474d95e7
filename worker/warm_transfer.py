"""Warm transfer on a self-hosted LiveKit: consult a colleague in the caller's own room.

LiveKit's own ``WarmTransferTask`` consults in a second room and then moves the colleague into
the caller's, which the open-source server cannot do (livekit/livekit#4203). Here everyone
stays in one room and who hears whom is set per track:

- the agent publishes two more tracks, hold music (livekit's ``BackgroundAudioPlayer``) and a
  consultation voice; its track subscription permissions let the caller subscribe to the hold
  music and its usual voice only, and the colleague to the consultation voice only;
- livekit-sip subscribes each phone leg to every audio track published in the room, so the
  agent unsubscribes the caller from the colleague's track as soon as it is published (the
  colleague's leg publishes it when the dialling starts, before any audio flows) and the
  colleague from the caller's once they answer (livekit-sip subscribes them on the answer, so
  a fraction of a second of the caller's line may reach them);
- on acceptance (keypad 1 or "yes") the two legs are subscribed to each other and the agent
  falls silent; it stays in the room, without listening or speaking, only to end the other
  leg when one of them hangs up (LiveKit would keep a lone phone leg in the room).

The colleague is phoned by the control plane (``POST /api/worker/sessions/{id}/transfer-legs``)
so the outbound trunk's credentials never reach the worker. Over 300 lines on purpose: the
consultation, the per-track permissions and both outcomes are one state machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal

from livekit import api, rtc
from livekit.agents import AgentSession, JobContext, RunContext, get_job_context, llm, stt, tts
from livekit.agents.llm import RawFunctionTool, ToolError, ToolResult, function_tool
from livekit.agents.voice.background_audio import (
    AudioConfig,
    BackgroundAudioPlayer,
    BuiltinAudioClip,
)

from stimm.schema import TransferLegCreate, WarmTransferTool
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError

logger = logging.getLogger("stimm.worker")

Decision = Literal["accepted", "declined", "no_answer"]

WARM_TRANSFER_DESCRIPTION = (
    "Transfer the caller to a human colleague, who is first told what the call is about. Use "
    "it when the user asks for a person or when you cannot help. Tell the user you are asking "
    "a colleague and that they will be on hold before calling it."
)
COLLEAGUE_IDENTITY = "transfer-colleague"
CONSULT_TRACK = "consultation"
ASK = "Press 1 or say yes to take the call; press 2 or say no to decline."
CONNECTING = "Thank you, I am connecting you now."
SUMMARY_PROMPT = (
    "You are handing a phone call over to a human colleague. In two or three short spoken "
    "sentences, tell them who is calling if known and what the caller wants, from the "
    "conversation so far. Speak to the colleague directly; no lists, no markdown."
)
FALLBACK_SUMMARY = "I have a caller on the line who asked to speak to a person."
SUMMARY_TIMEOUT_S = 15.0

_YES = re.compile(r"\b(yes|yeah|yep|sure|okay|ok|accept|put (them|him|her) through)\b")
_NO = re.compile(r"\b(no|nope|decline|can't|cannot|not now|busy)\b")


def heard_decision(text: str) -> Decision | None:
    """What a colleague's words say: ``accepted``, ``declined`` or nothing clear."""
    words = text.lower()
    if _NO.search(words):
        return "declined"
    if _YES.search(words):
        return "accepted"
    return None


@dataclass(frozen=True)
class TransferLine:
    """What a warm transfer needs from the job: the session and the way to the control plane."""

    client: ControlPlaneClient
    session_id: str
    caller_identity: str


def warm_transfer_tool(
    spec: WarmTransferTool, line: TransferLine | None
) -> RawFunctionTool[..., Any]:
    """A tool that warm-transfers the phone caller to ``spec.target``.

    Args:
        spec: The tool's config.
        line: The phone call it transfers; ``None`` outside a phone session (the tool then
            tells the LLM so).
    """
    schema = {
        "name": "warm_transfer",
        "description": spec.description or WARM_TRANSFER_DESCRIPTION,
        "parameters": {"type": "object", "properties": {}},
    }

    async def warm_transfer(raw_arguments: dict[str, Any], context: RunContext[Any]) -> Any:
        job = get_job_context(required=False)
        caller = job.room.remote_participants.get(line.caller_identity) if job and line else None
        if job is None or line is None or caller is None:
            raise ToolError("This is not a phone call, so it cannot be transferred.")
        await context.wait_for_playout()  # "let me ask a colleague, please hold" first
        consultation = Consultation(job, context.session, caller, spec, line)
        decision = await consultation.run()
        if decision == "accepted":
            # the caller is talking to the colleague: nothing more from the agent
            return ToolResult("The caller is now connected to the colleague.", reply_required=False)
        if decision == "declined":
            return "The colleague declined the transfer. Tell the caller and offer to help."
        return "No colleague answered the transfer. Tell the caller and offer to help."

    return function_tool(warm_transfer, raw_schema=schema)


class Consultation:
    """One warm transfer: hold, phone the colleague, brief them, connect or come back.

    Args:
        job: The job (room, LiveKit API).
        agent_session: The agent's ``AgentSession`` (its LLM summarizes, its TTS and STT talk
            to the colleague).
        caller: The caller's SIP participant.
        spec: The tool's config.
        line: The session and the control plane.
    """

    def __init__(
        self,
        job: JobContext,
        agent_session: AgentSession[Any],
        caller: rtc.RemoteParticipant,
        spec: WarmTransferTool,
        line: TransferLine,
    ) -> None:
        self._job = job
        self._room = job.room
        self._agent_session = agent_session
        self._caller = caller
        self._spec = spec
        self._line = line
        self._colleague = COLLEAGUE_IDENTITY
        self._hold = BackgroundAudioPlayer()
        self._consult_source: rtc.AudioSource | None = None
        self._consult_track: rtc.LocalTrackPublication | None = None
        self._decision: asyncio.Future[Decision] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    async def run(self) -> Decision:
        """Consult the colleague; ``accepted`` leaves the caller with them."""
        summary = asyncio.create_task(summarize(self._agent_session))
        self._agent_session.input.set_audio_enabled(False)  # the caller on hold is not listened to
        self._room.on("track_published", self._on_track_published)
        self._room.on("participant_disconnected", self._on_caller_left)
        try:
            return await self._consult(summary)
        except Exception as e:  # the caller must not be left on hold
            logger.exception("session %s: warm transfer failed", self._line.session_id)
            await self._hang_up_colleague()
            await self._back_to_caller("no_answer")
            raise ToolError("The transfer failed; apologise and offer to help.") from e
        finally:
            summary.cancel()
            self._room.off("track_published", self._on_track_published)
            self._room.off("participant_disconnected", self._on_caller_left)

    async def _consult(self, summary: asyncio.Task[str]) -> Decision:
        await self._start_hold()
        try:
            await self._line.client.dial_transfer_leg(
                self._line.session_id,
                TransferLegCreate(target=self._spec.target, participant_identity=self._colleague),
                timeout=self._spec.ringing_timeout_s + 15.0,
            )
        except ControlPlaneError as e:
            logger.info("session %s: warm transfer not answered: %s", self._line.session_id, e)
            return await self._back_to_caller("no_answer")
        await self._keep_apart()
        decision = await self._brief(await summary)
        if decision != "accepted":
            await self._hang_up_colleague()
            return await self._back_to_caller(decision)
        await self._connect()
        return "accepted"

    def _on_caller_left(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self._caller.identity:  # nobody to transfer any more
            self._background(self._job.delete_room())

    def _background(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- hold ---------------------------------------------------------------------------------

    async def _start_hold(self) -> None:
        await self._hold.start(room=self._room)
        if self._spec.hold_music:
            self._hold.play(AudioConfig(BuiltinAudioClip.HOLD_MUSIC, volume=0.8), loop=True)
        self._consult_source = rtc.AudioSource(self._tts.sample_rate, self._tts.num_channels)
        track = rtc.LocalAudioTrack.create_audio_track(CONSULT_TRACK, self._consult_source)
        self._consult_track = await self._room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        hold = self._hold.publication
        voice = [
            p.sid
            for p in self._room.local_participant.track_publications.values()
            if p.sid not in (self._consult_track.sid, hold.sid if hold else None)
        ]
        self._room.local_participant.set_track_subscription_permissions(
            allow_all_participants=False,
            participant_permissions=[
                rtc.ParticipantTrackPermission(
                    participant_identity=self._caller.identity,
                    allowed_track_sids=[*voice, *([hold.sid] if hold else [])],
                ),
                rtc.ParticipantTrackPermission(
                    participant_identity=self._colleague,
                    allowed_track_sids=[self._consult_track.sid],
                ),
            ],
        )

    async def _end_hold(self) -> None:
        self._room.local_participant.set_track_subscription_permissions(allow_all_participants=True)
        await self._hold.aclose()
        if self._consult_track is not None:
            with contextlib.suppress(Exception):
                await self._room.local_participant.unpublish_track(self._consult_track.sid)
            self._consult_track = None
        if self._consult_source is not None:
            await self._consult_source.aclose()
            self._consult_source = None

    # --- who hears whom -----------------------------------------------------------------------

    def _on_track_published(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if participant.identity == self._colleague:
            self._background(
                self._subscribe(self._caller.identity, [publication.sid], subscribe=False)
            )

    async def _keep_apart(self) -> None:
        colleague = self._room.remote_participants.get(self._colleague)
        if colleague is not None:
            await self._subscribe(
                self._caller.identity, list(colleague.track_publications), subscribe=False
            )
        await self._subscribe(
            self._colleague, list(self._caller.track_publications), subscribe=False
        )

    async def _subscribe(self, identity: str, track_sids: list[str], *, subscribe: bool) -> None:
        if not track_sids:
            return
        try:
            await self._job.api.room.update_subscriptions(
                api.UpdateSubscriptionsRequest(
                    room=self._room.name,
                    identity=identity,
                    track_sids=track_sids,
                    subscribe=subscribe,
                )
            )
        except api.TwirpError as e:  # the participant left meanwhile
            logger.warning("subscriptions of %s not updated: %s", identity, e.code)

    # --- the colleague ------------------------------------------------------------------------

    @property
    def _tts(self) -> tts.TTS[Any]:
        engine = self._agent_session.tts
        if engine is None:
            raise ToolError("The agent has no voice to brief a colleague with.")
        return engine

    async def _say_to_colleague(self, text: str) -> None:
        source = self._consult_source
        if source is None:
            return
        async with self._tts.synthesize(text) as stream:
            async for audio in stream:
                await source.capture_frame(audio.frame)
        await source.wait_for_playout()

    async def _brief(self, summary: str) -> Decision:
        """Tell the colleague the summary and wait for their answer (keypad or voice)."""
        loop = asyncio.get_running_loop()
        self._decision = loop.create_future()
        self._room.on("sip_dtmf_received", self._on_dtmf)
        self._room.on("participant_disconnected", self._on_left)
        listening = asyncio.create_task(self._listen())
        try:
            await self._say_to_colleague(f"{summary} {ASK}")
            try:
                return await asyncio.wait_for(
                    asyncio.shield(self._decision), self._spec.decision_timeout_s
                )
            except TimeoutError:
                return "declined"
        finally:
            self._room.off("sip_dtmf_received", self._on_dtmf)
            self._room.off("participant_disconnected", self._on_left)
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listening

    def _decide(self, decision: Decision) -> None:
        if self._decision is not None and not self._decision.done():
            logger.info("session %s: warm transfer %s", self._line.session_id, decision)
            self._decision.set_result(decision)

    def _on_dtmf(self, ev: rtc.SipDTMF) -> None:
        if ev.participant is not None and ev.participant.identity == self._colleague:
            if ev.digit == "1":
                self._decide("accepted")
            elif ev.digit == "2":
                self._decide("declined")

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self._colleague:
            self._decide("declined")

    async def _listen(self) -> None:
        """The colleague's words, through the agent's own STT, for "yes" or "no"."""
        engine = self._agent_session.stt
        colleague = self._room.remote_participants.get(self._colleague)
        if engine is None or colleague is None:
            return
        audio = rtc.AudioStream.from_participant(
            participant=colleague,
            track_source=rtc.TrackSource.SOURCE_MICROPHONE,
            sample_rate=16_000,
            num_channels=1,
        )
        recognition = engine.stream()

        async def feed() -> None:
            async for ev in audio:
                recognition.push_frame(ev.frame)

        feeding = asyncio.create_task(feed())
        try:
            async for event in recognition:
                if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
                    if decision := heard_decision(event.alternatives[0].text):
                        self._decide(decision)
        finally:
            feeding.cancel()
            await recognition.aclose()
            await audio.aclose()

    async def _hang_up_colleague(self) -> None:
        with contextlib.suppress(api.TwirpError):
            await self._job.api.room.remove_participant(
                api.RoomParticipantIdentity(room=self._room.name, identity=self._colleague)
            )

    # --- the end ------------------------------------------------------------------------------

    async def _back_to_caller(self, decision: Decision) -> Decision:
        await self._end_hold()
        self._agent_session.input.set_audio_enabled(True)
        return decision

    async def _connect(self) -> None:
        await self._say_to_colleague(CONNECTING)
        await self._end_hold()
        self._agent_session.output.set_audio_enabled(False)
        colleague = self._room.remote_participants.get(self._colleague)
        if colleague is not None:
            await self._subscribe(
                self._caller.identity, list(colleague.track_publications), subscribe=True
            )
        await self._subscribe(
            self._colleague, list(self._caller.track_publications), subscribe=True
        )
        legs = {self._caller.identity, self._colleague}

        def on_left(participant: rtc.RemoteParticipant) -> None:
            if participant.identity in legs:  # end the other leg too
                logger.info("session %s: a transferred leg hung up", self._line.session_id)
                self._background(self._job.delete_room())

        self._room.on("participant_disconnected", on_left)


async def summarize(agent_session: AgentSession[Any]) -> str:
    """The conversation so far, summarized by the agent's LLM for the colleague (one request)."""
    model = agent_session.llm
    lines = [
        f"{'Caller' if item.role == 'user' else 'Agent'}: {item.text_content}"
        for item in agent_session.history.messages()
        if item.role in ("user", "assistant") and item.text_content
    ]
    if not isinstance(model, llm.LLM) or not lines:
        return FALLBACK_SUMMARY
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content=SUMMARY_PROMPT)
    ctx.add_message(role="user", content="Conversation so far:\n" + "\n".join(lines))
    parts: list[str] = []
    try:
        async with asyncio.timeout(SUMMARY_TIMEOUT_S), model.chat(chat_ctx=ctx) as stream:
            async for chunk in stream:
                if chunk.delta is not None and chunk.delta.content:
                    parts.append(chunk.delta.content)
    except Exception as e:  # a failing LLM must not strand the caller on hold
        logger.warning("warm transfer summary failed: %r", e)
        return FALLBACK_SUMMARY
    return "".join(parts).strip() or FALLBACK_SUMMARY
