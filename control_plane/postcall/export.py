"""Sessions and their analyses as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from control_plane.models import VoiceSession
from control_plane.postcall.models import SessionAnalysis

SESSION_COLUMNS = (
    "id",
    "agent_id",
    "channel",
    "status",
    "failure_reason",
    "created_at",
    "started_at",
    "ended_at",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    # a cell a spreadsheet would run as a formula is quoted (CSV injection)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def sessions_csv(
    voice_sessions: Sequence[VoiceSession], analyses: Mapping[str, SessionAnalysis]
) -> str:
    """One row per session; the analysis fields of all of them as columns, in first-seen order."""
    fields: dict[str, None] = {}
    for done in analyses.values():
        fields.update(dict.fromkeys(done.data or {}))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*SESSION_COLUMNS, "analysis_status", "analysis_error", "summary", *fields])
    for voice_session in voice_sessions:
        analysis = analyses.get(voice_session.id)
        data = (analysis.data if analysis else None) or {}
        writer.writerow(
            [
                *(_cell(getattr(voice_session, c)) for c in SESSION_COLUMNS),
                _cell(analysis.status if analysis else None),
                _cell(analysis.last_error if analysis else None),
                _cell(analysis.summary if analysis else None),
                *(_cell(data.get(f)) for f in fields),
            ]
        )
    return out.getvalue()
