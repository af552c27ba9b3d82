"""Sales feedback on handed-back leads.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dripengine.storage.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("campaign_id", sa.String(length=100), nullable=True),
        sa.Column("recycle_reason", sa.String(length=64), nullable=True),
        sa.Column("score_at_handoff", sa.Float(), nullable=True),
        sa.Column("fit_at_handoff", sa.String(length=1), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["lead_id"], ["lead.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_lead_at", ["lead_id", "at"], unique=False)
        batch_op.create_index("ix_feedback_outcome_at", ["outcome", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_outcome_at")
        batch_op.drop_index("ix_feedback_lead_at")
    op.drop_table("feedback")
