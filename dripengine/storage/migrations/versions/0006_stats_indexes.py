"""Indexes for `drip stats` and `drip report` (1M emails, 3M events: by campaign in ~2.5 s on SQLite).

- ``message (status, sent_at, campaign_id, track, step_id)``: the emails sent in a window, counted
  per campaign, step or day from the index alone;
- ``event (message_id, type, machine)`` replaces ``event (message_id, type)``: each email's
  outcomes (human or machine open, click, …) from the index alone; the old one's queries use its
  first two columns as before;
- ``handoff (lead_id, created_at)``: whether a recycle ended in a hand-back (the closed loop).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_status_sent",
            ["status", "sent_at", "campaign_id", "track", "step_id"],
            unique=False,
        )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_message_type_machine", ["message_id", "type", "machine"], unique=False
        )
        batch_op.drop_index("ix_event_message_type")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index("ix_handoff_lead_created", ["lead_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_index("ix_handoff_lead_created")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_message_type", ["message_id", "type"], unique=False)
        batch_op.drop_index("ix_event_message_type_machine")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_status_sent")
