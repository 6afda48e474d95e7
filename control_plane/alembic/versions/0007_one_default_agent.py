"""At most one default agent, enforced by a partial unique index.

Agents created at the same moment on an empty deployment could all become the default. Where
that happened, the oldest default (earliest ``created_at``, then smallest id) stays the
default and the others stop being one, before the index is created.

Revision ID: 0007_one_default_agent
Revises: 0006_ingestion_queue
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_one_default_agent"
down_revision: str | Sequence[str] | None = "0006_ingestion_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_agent = sa.table(
    "agent",
    sa.column("id", sa.String),
    sa.column("is_default", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    oldest_default = (
        sa.select(_agent.c.id)
        .where(_agent.c.is_default)
        .order_by(_agent.c.created_at, _agent.c.id)
        .limit(1)
        .scalar_subquery()
    )
    op.execute(
        _agent.update()
        .where(_agent.c.is_default, _agent.c.id != oldest_default)
        .values(is_default=False)
    )
    op.create_index(
        "uq_agent_one_default",
        "agent",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
        sqlite_where=sa.text("is_default"),
    )


def downgrade() -> None:
    op.drop_index("uq_agent_one_default", table_name="agent")
