"""An agent's test scenarios: its YAML file and the result of its last run.

Revision ID: 0011_agent_scenarios
Revises: 0009_turn_idempotency
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_agent_scenarios"
down_revision: str | None = "0010_publishable_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_scenarios",
        sa.Column(
            "agent_id",
            sa.String(36),
            sa.ForeignKey("agent.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run", sa.JSON(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("agent_scenarios")
