"""`drip serve` processes in the ``worker`` heartbeat table: a ``kind`` (``run`` | ``serve``) and
no provider for a serve process.

The rows already there are `drip run` workers: ``kind`` defaults to ``run`` in the database.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="run")
        )
        batch_op.alter_column("provider", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM worker WHERE kind <> 'run'")
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.alter_column("provider", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column("kind")
