"""A session's ``Idempotency-Key``, unique per API key: a client that retries
``POST /api/sessions`` (its control plane died mid-request, its connection dropped) gets the
session it already started, whichever control-plane replica answers the retry. And the LiveKit
node the session's room was placed on, so that its call is failed when that node dies even if
its caller rejoins a room LiveKit re-created on another node.

Revision ID: 0016_session_idempotency
Revises: 0015_phone_call
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_session_idempotency"
down_revision: str | Sequence[str] | None = "0015_phone_call"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("livekit_node", sa.String(64), nullable=True))
        batch.create_unique_constraint(
            "uq_session_api_key_idempotency", ["api_key_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("session") as batch:
        batch.drop_constraint("uq_session_api_key_idempotency", type_="unique")
        batch.drop_column("idempotency_key")
        batch.drop_column("livekit_node")
