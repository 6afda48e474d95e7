"""Phone numbers routed to agents, and call records.

Revision ID: 0004_telephony
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_telephony"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "phone_number",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agent.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("allowed_addresses", sa.JSON(), nullable=False),
        sa.Column("auth_username", sa.String(100), nullable=True),
        sa.Column("auth_password", sa.Text(), nullable=True),  # Fernet ciphertext
        sa.Column("trunk_id", sa.String(64), nullable=True),
        sa.Column("dispatch_rule_id", sa.String(64), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
    )
    op.create_index("ix_phone_number_number", "phone_number", ["number"], unique=True)

    op.create_table(
        "call",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("session.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("caller", sa.String(64), nullable=True),
        sa.Column("callee", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("sip_call_id", sa.String(200), nullable=True),
        _timestamp("created_at", nullable=False),
    )
    op.create_index("ix_call_created_at", "call", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_call_created_at", table_name="call")
    op.drop_table("call")
    op.drop_index("ix_phone_number_number", table_name="phone_number")
    op.drop_table("phone_number")
