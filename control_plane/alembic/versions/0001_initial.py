"""Agents, sessions and turns.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("greeting", sa.Text(), nullable=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("voice", sa.String(200), nullable=True),
        sa.Column("stt", sa.JSON(), nullable=False),
        sa.Column("llm", sa.JSON(), nullable=False),
        sa.Column("tts", sa.JSON(), nullable=False),
        sa.Column("turn_taking", sa.JSON(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("knowledge_base_id", sa.String(36), nullable=True),
        sa.Column("rag", sa.JSON(), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
    )
    op.create_index("ix_agent_created_at", "agent", ["created_at"])

    op.create_table(
        "session",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agent.id"), nullable=False),
        sa.Column("room", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("participant_identity", sa.String(128), nullable=True),
        sa.Column("turn_detection", sa.String(32), nullable=True),
        sa.Column("worker_id", sa.String(100), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.UniqueConstraint("room", name="uq_session_room"),
    )
    op.create_index("ix_session_agent_id", "session", ["agent_id"])
    op.create_index("ix_session_created_at", "session", ["created_at"])

    op.create_table(
        "turn",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("session.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        _timestamp("started_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_turn_session_seq"),
    )


def downgrade() -> None:
    op.drop_table("turn")
    op.drop_index("ix_session_created_at", table_name="session")
    op.drop_index("ix_session_agent_id", table_name="session")
    op.drop_table("session")
    op.drop_index("ix_agent_created_at", table_name="agent")
    op.drop_table("agent")
