"""Call recordings: an agent's recording policy and one stored recording per session.

Revision ID: 0012_recordings
Revises: 0014_campaigns
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_recordings"
down_revision: str | Sequence[str] | None = "0014_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        # existing agents are not recorded (the policy's defaults)
        batch.add_column(sa.Column("recording", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "recording",
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("session.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_recording_expires_at", "recording", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_recording_expires_at", table_name="recording")
    op.drop_table("recording")
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("recording")
