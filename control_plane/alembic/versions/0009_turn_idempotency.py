"""A turn's key from the worker, unique in its session: a post the worker retries (the control
plane was down or did not answer) is stored once.

Revision ID: 0009_turn_idempotency
Revises: 0008_session_api_key
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_turn_idempotency"
down_revision: str | None = "0008_session_api_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("turn") as batch:
        batch.add_column(sa.Column("key", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_turn_session_key", ["session_id", "key"])


def downgrade() -> None:
    with op.batch_alter_table("turn") as batch:
        batch.drop_constraint("uq_turn_session_key", type_="unique")
        batch.drop_column("key")
