"""The call's audio recording, for agents whose ``recording.enabled`` is on.

livekit-agents' own recorder (``voice.recorder_io.RecorderIO``, turned on by
``AgentSession.start(record=...)``) writes the caller (left channel) and the agent (right
channel, as played out) on one timeline into a stereo Ogg/Opus file in the job's session folder.
When the call has ended the file is uploaded to the control plane, which keeps it in its
recordings store; the job's folder, and the file with it, is removed when the job ends.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from livekit.agents import AgentSession, JobContext, RecordingOptions

from stimm.schema import RecordingPolicy
from worker.control_plane_client import ControlPlaneClient, ControlPlaneError

logger = logging.getLogger("stimm.worker")


def record_options(policy: RecordingPolicy) -> RecordingOptions:
    """``AgentSession.start(record=...)``: the audio file when the agent records, nothing else.

    Traces, logs and transcripts are what livekit-agents uploads to LiveKit Cloud's
    observability; Stimm keeps transcripts itself (``worker.recorder``) and uploads nowhere else.
    """
    return RecordingOptions(audio=policy.enabled, traces=False, logs=False, transcript=False)


async def upload_recording(
    ctx: JobContext, agent_session: AgentSession[Any], client: ControlPlaneClient, session_id: str
) -> bool:
    """Upload the finished recording of ``agent_session``; False when there is none or it failed.

    Call once the session has closed (a shutdown callback): the recorder is closed with it.
    """
    report = ctx.make_session_report(agent_session)
    path, started = report.audio_recording_path, report.audio_recording_started_at
    if path is None or started is None or not path.is_file() or path.stat().st_size == 0:
        logger.warning("session %s: no recording was made", session_id)
        return False
    try:
        await client.upload_recording(
            session_id, path, started_at=datetime.fromtimestamp(started, tz=UTC)
        )
    except ControlPlaneError as e:
        logger.error("session %s: recording not uploaded: %s", session_id, e)
        return False
    logger.info("session %s: recording uploaded", session_id)
    return True
