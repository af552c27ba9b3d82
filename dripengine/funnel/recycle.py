"""Recycling: a lead sales gave back goes to ``recycled`` and into the campaign that fits it.

The one function that recycles a lead: :func:`recycle` (its own transaction) or
:func:`recycle_in` (inside a caller's, as sales' feedback does). The decision is
:func:`dripengine.funnel.recycle_plan.decide`, pure; this module loads the snapshots it needs and
writes the rows it asks for through :mod:`dripengine.storage.funnel`, with statements that serve
one lead and a batch of them alike (:func:`load` and :func:`write`, also used by
:mod:`dripengine.funnel.recycle_csv`): one query a table to load, one executemany a statement shape
to write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from dripengine.funnel.recycle_batch import Pending
from dripengine.funnel.recycle_plan import EnrollmentSnapshot, LeadSnapshot
from dripengine.funnel.recycle_request import (
    RecycleContext,
    RecycleOutcome,
    RecycleRequest,
    request_email,
    suppression_text,
)
from dripengine.leads.nearest import nearest_addresses
from dripengine.storage import Connection, Engine, suppression
from dripengine.storage import funnel as store
from dripengine.storage.events import insert_score_changes

__all__ = ["load", "recycle", "recycle_in", "write"]

RESET_REASON = "reset on recycle (kept in history)"


def recycle(engine: Engine, request: RecycleRequest, ctx: RecycleContext) -> RecycleOutcome:
    """Recycle one lead and enroll it where it fits, in one transaction. Raises FunnelError (and
    nothing is written) when it may not be."""
    with engine.begin() as connection:
        return recycle_in(connection, request, ctx)


def recycle_in(
    connection: Connection, request: RecycleRequest, ctx: RecycleContext
) -> RecycleOutcome:
    """:func:`recycle` in the connection's transaction."""
    email = request_email(request)
    pending = load(connection, [email], suggest=0 if ctx.create_leads else 1)
    outcome = pending.recycle(request, ctx)
    write(connection, pending)
    return outcome


def load(connection: Connection, emails: Collection[str], *, suggest: int = 0) -> Pending:
    """The leads, suppressions and enrollments of ``emails`` (normalised), one query each; with
    ``suggest``, the nearest stored addresses of up to that many addresses no lead has."""
    wanted = list(emails)
    leads: dict[str, LeadSnapshot] = {}
    suppressed: dict[str, str] = {}
    enrollments: dict[str, list[EnrollmentSnapshot]] = defaultdict(list)
    if not wanted:
        return Pending(wanted, leads, suppressed, enrollments)
    for values in store.recycle_leads(connection, wanted):
        leads[values["email"]] = LeadSnapshot(**values)
    for email, entry in suppression.suppressed(connection, wanted).items():  # plain and hashed
        suppressed[email] = suppression_text(entry.reason, entry.created_at)
    emails_by_id = {lead.id: email for email, lead in leads.items()}
    if emails_by_id:
        for values in store.recycle_enrollments(connection, list(emails_by_id)):
            email = emails_by_id[values.pop("lead_id")]
            enrollments[email].append(EnrollmentSnapshot(**values))
    pending = Pending(wanted, leads, suppressed, enrollments)
    unknown = [e for e in wanted if e not in leads and e not in suppressed][:suggest]
    if unknown:
        pending.nearest = nearest_addresses(connection, unknown)
    return pending


def write(connection: Connection, pending: Pending) -> None:
    """Insert and update the rows ``pending``'s decisions add up to, in the connection's
    transaction: new leads first (their ids come back with ``RETURNING``), then the rest."""
    ids = {email: lead.id for email, lead in pending.loaded_leads.items()}
    new_leads = pending.new_leads()
    if new_leads:
        ids.update(store.insert_leads(connection, [_lead_values(lead) for lead in new_leads]))
    store.update_leads(connection, pending.lead_updates())
    if pending.stage_changes:
        store.insert_stage_changes(
            connection,
            [
                {
                    "lead_id": ids[row.email],
                    "from_stage": row.from_stage,
                    "to_stage": row.to_stage,
                    "reason": row.reason,
                    "actor": row.actor,
                    "at": row.at,
                }
                for row in pending.stage_changes
            ],
        )
    new_enrollments = [
        {"lead_id": ids[email], **_enrollment_values(row)}
        for email, row in pending.new_enrollments()
    ]
    if new_enrollments:
        store.insert_enrollments(connection, new_enrollments)
    store.update_enrollments(connection, pending.enrollment_updates())
    if pending.score_resets:
        insert_score_changes(
            connection,
            [
                {
                    "lead_id": ids[email],
                    "event_id": None,
                    "delta": -old,
                    "score_after": 0.0,
                    "reason": RESET_REASON,
                    "at": at,
                }
                for email, old, at in pending.score_resets
            ],
        )
    if pending.records:
        store.insert_recycle_records(
            connection,
            [
                {
                    "lead_id": ids[row.email],
                    "from_stage": row.from_stage,
                    "reason": row.reason,
                    "note": row.note,
                    "actor": row.actor,
                    "at": row.at,
                    "recycle_count": row.recycle_count,
                    "campaign_id": row.campaign_id,
                    "outcome": row.outcome,
                    "detail": row.detail,
                }
                for row in pending.records
            ],
        )


def _lead_values(lead: LeadSnapshot) -> dict[str, Any]:
    values = {name: getattr(lead, name) for name in store.LEAD_INSERT_COLUMNS}
    values["attributes"] = dict(lead.attributes)
    return values


def _enrollment_values(row: EnrollmentSnapshot) -> dict[str, Any]:
    return {name: getattr(row, name) for name in store.ENROLLMENT_INSERT_COLUMNS}
