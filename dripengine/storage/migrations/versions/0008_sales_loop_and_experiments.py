"""Issue 16: sales touches, SLA alerts, holdout groups and A/B variants.

- ``sales_touch``: a rep's call, email or meeting as the CRM reported it.
- ``sla_alert``: an SLA clock that passed on a hand-back (the reminder outbox, and what was done).
- ``enrollment.holdout``: the enrollment is in its campaign's holdout group (sent nothing).
- ``message.variant``: the A/B variant of the step this email was.
- ``variant_winner``: the variant a ``pick_winner`` step settled on, when and why.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dripengine.storage.types import JSONDict, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sales_touch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["lead.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lead_id", "kind", "at", name="uq_sales_touch_lead_kind_at"),
    )
    op.create_index("ix_sales_touch_at", "sales_touch", ["at"], unique=False)
    op.create_table(
        "sla_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("clock", sa.String(length=16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoff.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["lead_id"], ["lead.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
        sa.UniqueConstraint("handoff_id", "clock", name="uq_sla_alert_handoff_clock"),
    )
    op.create_index("ix_sla_alert_status_next", "sla_alert", ["status", "next_attempt_at"])
    op.create_table(
        "variant_winner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=100), nullable=False),
        sa.Column("step_id", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("detail", JSONDict, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "step_id", name="uq_variant_winner_campaign_step"),
    )
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("holdout", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variant", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("variant")
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_column("holdout")
    op.drop_table("variant_winner")
    op.drop_index("ix_sla_alert_status_next", table_name="sla_alert")
    op.drop_table("sla_alert")
    op.drop_index("ix_sales_touch_at", table_name="sales_touch")
    op.drop_table("sales_touch")
