"""The phone side of a session is a ``phone_call``: table ``call`` renamed, with its indexes.

"Call" meant both a phone call and a session; the table now says which. Rows, the foreign key
to ``session`` and the unique session id move with the table. PostgreSQL renames indexes and
constraints in place (including the names it derived from the old table name, ``call_pkey``
and the like); SQLite cannot rename an index, so its two are made again under the new names.

Revision ID: 0015_phone_call
Revises: 0012_recordings
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_phone_call"
down_revision: str | Sequence[str] | None = "0012_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED = ("created_at", "campaign_id")


def upgrade() -> None:
    _rename("call", "phone_call")


def downgrade() -> None:
    _rename("phone_call", "call")


def _rename(old: str, new: str) -> None:
    op.rename_table(old, new)
    if op.get_bind().dialect.name == "postgresql":
        for column in _INDEXED:
            op.execute(f"ALTER INDEX ix_{old}_{column} RENAME TO ix_{new}_{column}")
        _rename_postgres_constraints(old, new)
    else:
        for column in _INDEXED:
            op.drop_index(f"ix_{old}_{column}", table_name=new)
            op.create_index(f"ix_{new}_{column}", new, [column])


def _rename_postgres_constraints(old: str, new: str) -> None:
    """``call_pkey``, ``call_session_id_key``, ``call_session_id_fkey`` → ``phone_call_...``
    (and back): the names PostgreSQL gives a table's constraints, as if made under ``new``."""
    names = op.get_bind().execute(
        sa.text("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:table AS regclass)"),
        {"table": new},
    )
    for (name,) in names.all():
        if name.startswith(f"{old}_"):
            renamed = f"{new}_{name.removeprefix(f'{old}_')}"
            op.execute(f'ALTER TABLE "{new}" RENAME CONSTRAINT "{name}" TO "{renamed}"')
