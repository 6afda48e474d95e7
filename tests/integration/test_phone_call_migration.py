"""The ``call`` table becomes ``phone_call``: a deployment's phone calls survive the upgrade
and the downgrade, still tied to their sessions. SQLite here; PostgreSQL runs every migration
in each module's fresh database and ``test_migration_matches_the_models`` compares the result."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command

from control_plane.core.db import alembic_config

pytestmark = pytest.mark.integration

NOW = "2026-12-01 00:00:00"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_phone_calls_move_to_their_table_and_back(tmp_path: Path) -> None:
    path = tmp_path / "stimm.db"
    config = alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0012_recordings")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO agent (id, name, instructions, language, stt, llm, tts, turn_taking,"
            " tools, rag, analysis, redact_pii, is_default, created_at, updated_at)"
            " VALUES ('a', 'a', 'x', 'en', '[]', '[]', '[]', '{}', '[]', '{}', '{}', 0, 1, ?, ?)",
            (NOW, NOW),
        )
        for n in (1, 2):
            conn.execute(
                "INSERT INTO session (id, agent_id, room, channel, status, created_at)"
                " VALUES (?, 'a', ?, 'phone', 'completed', ?)",
                (f"s{n}", f"stimm-s{n}", NOW),
            )
            conn.execute(
                "INSERT INTO call (id, session_id, direction, callee, outcome, created_at)"
                " VALUES (?, ?, 'outbound', '+15550123', 'answered', ?)",
                (f"c{n}", f"s{n}", NOW),
            )

    command.upgrade(config, "heads")
    assert "call" not in tables(path)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id, session_id, callee FROM phone_call ORDER BY id").fetchall()
        assert rows == [("c1", "s1", "+15550123"), ("c2", "s2", "+15550123")]
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM session WHERE id = 's2'")  # its phone call goes with it
        assert conn.execute("SELECT id FROM phone_call").fetchall() == [("c1",)]
        with pytest.raises(sqlite3.IntegrityError):  # still one phone call per session
            conn.execute(
                "INSERT INTO phone_call (id, session_id, direction, outcome, created_at)"
                " VALUES ('c3', 's1', 'inbound', 'ringing', ?)",
                (NOW,),
            )

    command.downgrade(config, "0012_recordings")
    assert "phone_call" not in tables(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, session_id FROM call").fetchall() == [("c1", "s1")]
