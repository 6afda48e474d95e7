"""The API key that started a session, for its concurrent-session quota.

Revision ID: 0008_session_api_key
Revises: 0007_one_default_agent
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_session_api_key"
down_revision: str | Sequence[str] | None = "0007_one_default_agent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(36), nullable=True))
        batch.create_index("ix_session_api_key_id", ["api_key_id"])


def downgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.drop_index("ix_session_api_key_id")
        batch.drop_column("api_key_id")
