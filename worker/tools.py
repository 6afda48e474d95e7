"""Tools an agent is configured with, built from stored config: no code per agent.

- ``webhook``: an HTTP call whose JSON answer goes back to the LLM. The LLM sees the stored
  JSON schema as the tool's parameters. A call that fails or times out makes the agent say the
  tool's ``failure_message`` (or a generic apology) out loud instead of going silent.
- ``end_call``: after the agent's goodbye has played, the session ends; in a LiveKit job the
  room is deleted, which also hangs up a phone caller.
- ``transfer_call``: cold-transfers the phone caller (SIP REFER) to the configured target.
- ``warm_transfer``: consults a colleague first, then connects them (``worker/warm_transfer.py``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import httpx
from livekit import api, rtc
from livekit.agents import RunContext, get_job_context
from livekit.agents.llm import RawFunctionTool, StopResponse, ToolError, ToolResult, function_tool
from livekit.agents.voice.events import CloseEvent
from livekit.agents.voice.speech_handle import SpeechHandle

from stimm.egress import EgressRefused
from stimm.schema import AgentConfig, EndCallTool, TransferCallTool, WarmTransferTool, WebhookTool
from worker.warm_transfer import TransferLine, warm_transfer_tool

logger = logging.getLogger("stimm.worker")

Tool = RawFunctionTool[..., Any]
"""A livekit tool whose parameters are a stored JSON schema."""

WEBHOOK_FAILURE = "Sorry, I couldn't get that information just now."
MAX_RESULT_CHARS = 8_000
"""Longer webhook answers are cut before they reach the LLM."""

END_CALL_DESCRIPTION = (
    "End the call. Use it when the user has clearly said they are done. Say a short goodbye "
    "in the same reply; the call ends once it has been spoken."
)
TRANSFER_DESCRIPTION = (
    "Transfer the caller to a human colleague. Use it when the user asks for a person or "
    "when you cannot help. Tell the user you are transferring them before calling it."
)


def build_tools(
    config: AgentConfig, http: httpx.AsyncClient, line: TransferLine | None = None
) -> list[Tool]:
    """The livekit function tools for an agent's configured tools.

    Args:
        config: The agent config, its secret header values filled in by the control plane.
        http: The client webhook calls go through (owned by the caller); in a worker,
            ``stimm.egress.egress_client()``, which refuses addresses the egress policy does
            not allow.
        line: The phone call a warm transfer hands over; ``None`` outside phone sessions.

    Returns:
        One tool per configured tool, in order.
    """
    tools: list[Tool] = []
    for spec in config.tools:
        if isinstance(spec, WebhookTool):
            tools.append(webhook_tool(spec, http))
        elif isinstance(spec, EndCallTool):
            tools.append(end_call_tool(spec))
        elif isinstance(spec, TransferCallTool):
            tools.append(transfer_call_tool(spec))
        elif isinstance(spec, WarmTransferTool):
            tools.append(warm_transfer_tool(spec, line))
    return tools


def webhook_tool(spec: WebhookTool, http: httpx.AsyncClient) -> Tool:
    """A tool that calls ``spec.url`` with the LLM's arguments and returns the answer."""
    schema = {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
    # The worker's config carries the values in place of references; the control plane does
    # not hand out a config whose referenced secret is missing.
    headers = {name: value for name, value in spec.headers.items() if isinstance(value, str)}

    async def call_webhook(raw_arguments: dict[str, Any], context: RunContext[Any]) -> str:
        try:
            if spec.method == "GET":
                resp = await http.get(
                    spec.url, params=raw_arguments, headers=headers, timeout=spec.timeout_s
                )
            else:
                resp = await http.post(
                    spec.url, json=raw_arguments, headers=headers, timeout=spec.timeout_s
                )
            resp.raise_for_status()
        except (httpx.HTTPError, EgressRefused) as e:
            # the policy's refusal names the address; httpx errors are named by type only
            reason = str(e) if isinstance(e, EgressRefused) else type(e).__name__
            logger.warning("webhook tool %s failed: %s", spec.name, reason)
            # Said by us rather than left to the LLM: the caller must hear something even
            # when the model would answer a tool error with nothing.
            context.session.say(spec.failure_message or WEBHOOK_FAILURE)
            raise StopResponse() from e
        try:
            result = json.dumps(resp.json(), ensure_ascii=False)
        except ValueError:
            result = resp.text
        return result[:MAX_RESULT_CHARS]

    return function_tool(call_webhook, raw_schema=schema)


def end_call_tool(spec: EndCallTool) -> Tool:
    """A tool that ends the session once the reply that called it has been spoken."""
    description = spec.description or END_CALL_DESCRIPTION
    schema = {
        "name": "end_call",
        "description": description,
        "parameters": {"type": "object", "properties": {}},
    }

    async def end_call(raw_arguments: dict[str, Any], context: RunContext[Any]) -> None:
        agent_session = context.session

        def hang_up(_: SpeechHandle) -> None:
            agent_session.shutdown()

        agent_session.once("close", _delete_room_on_close)
        context.speech_handle.add_done_callback(hang_up)
        logger.info("end_call: the agent ends the session")
        return None

    return function_tool(end_call, raw_schema=schema)


def _delete_room_on_close(ev: CloseEvent) -> None:
    job = get_job_context(required=False)
    if job is None:  # a session run without a room (tests, console)
        return

    async def delete_room() -> None:
        await job.delete_room()

    job.add_shutdown_callback(delete_room)
    job.shutdown(reason="end_call")


def transfer_call_tool(spec: TransferCallTool) -> Tool:
    """A tool that cold-transfers the room's SIP participant to ``spec.target``."""
    schema = {
        "name": "transfer_call",
        "description": spec.description or TRANSFER_DESCRIPTION,
        "parameters": {"type": "object", "properties": {}},
    }

    async def transfer_call(raw_arguments: dict[str, Any], context: RunContext[Any]) -> ToolResult:
        job = get_job_context(required=False)
        caller = _sip_participant(job.room) if job is not None else None
        if job is None or caller is None:
            raise ToolError("This is not a phone call, so it cannot be transferred.")
        await context.wait_for_playout()  # let "I'm transferring you" finish first
        try:
            await job.api.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=job.room.name,
                    participant_identity=caller.identity,
                    transfer_to=spec.target,
                    play_dialtone=False,
                )
            )
        except api.TwirpError as e:  # the phone or its network refused the transfer
            logger.warning("transfer_call failed: %s", e.code)
            raise ToolError("The transfer failed; apologise and offer to help.") from e
        except (aiohttp.ClientError, TimeoutError) as e:  # LiveKit unreachable or too slow
            logger.warning("transfer_call failed: LiveKit did not answer: %r", e)
            raise ToolError("The transfer failed; apologise and offer to help.") from e
        # No reply: the caller is already being connected to the target and would hear the
        # agent talk on until livekit-sip hangs up its leg (a second after the transfer).
        return ToolResult("The caller has been transferred.", reply_required=False)

    return function_tool(transfer_call, raw_schema=schema)


def _sip_participant(room: rtc.Room) -> rtc.RemoteParticipant | None:
    for p in room.remote_participants.values():
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
            return p
    return None
