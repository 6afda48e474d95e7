"""Campaigns (rows as a leased queue, attempts with unique keys), answering-machine detection
(the agent's ``voicemail`` options, who answered a call) and a call's campaign.

Revision ID: 0014_campaigns
Revises: 0011_agent_scenarios
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_campaigns"
down_revision: str | None = "0013_post_call"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(sa.Column("voicemail", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("answered_by", sa.String(16), nullable=True))
        batch.add_column(sa.Column("campaign_id", sa.String(36), nullable=True))
        batch.create_index("ix_call_campaign_id", ["campaign_id"])
    op.create_table(
        "campaign",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agent.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.String(8), nullable=False),
        sa.Column("window_end", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_on", sa.JSON(), nullable=False),
        sa.Column("retry_delay_s", sa.Float(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "campaign_row",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "campaign_id",
            sa.String(36),
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "campaign_attempt",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "row_id",
            sa.String(36),
            sa.ForeignKey("campaign_row.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("call_id", sa.String(36), nullable=True),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key", name="uq_campaign_attempt_key"),
    )


def downgrade() -> None:
    op.drop_table("campaign_attempt")
    op.drop_table("campaign_row")
    op.drop_table("campaign")
    with op.batch_alter_table("call") as batch:
        batch.drop_index("ix_call_campaign_id")
        batch.drop_column("campaign_id")
        batch.drop_column("answered_by")
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("voicemail")
