"""The ingestion queue in the database: uploaded bytes kept until their document is ingested,
and how many times an ingestion of each document has started.

Revision ID: 0006_ingestion_queue
Revises: 0005_session_claim
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_ingestion_queue"
down_revision: str | None = "0005_session_claim"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "document_file",
        sa.Column(
            "document_id",
            sa.String(36),
            sa.ForeignKey("document.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("document_file")
    with op.batch_alter_table("document") as batch:
        batch.drop_column("attempts")
