"""Publishable keys of the embeddable widget, and the key that started a widget session.

Revision ID: 0010_publishable_keys
Revises: 0009_turn_idempotency
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_publishable_keys"
down_revision: str | Sequence[str] | None = "0009_turn_idempotency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "publishable_key",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("agent_ids", sa.JSON(), nullable=False),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("session") as batch:
        batch.add_column(sa.Column("publishable_key_id", sa.String(36), nullable=True))
        batch.create_index("ix_session_publishable_key_id", ["publishable_key_id"])


def downgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.drop_index("ix_session_publishable_key_id")
        batch.drop_column("publishable_key_id")
    op.drop_table("publishable_key")
