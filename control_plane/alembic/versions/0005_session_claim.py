"""The LiveKit job that answers a session, and the dispatch it must come from (one agent per
session, even after a re-dispatch).

Also joins the three branches that grew from 0001 (knowledge, auth and secrets, telephony).

Revision ID: 0005_session_claim
Revises: 0002_knowledge, 0003, 0004_telephony
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_session_claim"
down_revision: tuple[str, ...] = ("0002_knowledge", "0003", "0004_telephony")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.add_column(sa.Column("job_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("dispatch_token", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.drop_column("dispatch_token")
        batch.drop_column("job_id")
