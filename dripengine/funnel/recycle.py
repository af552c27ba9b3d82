"""Recycling: a lead sales gave back goes to ``recycled`` and into the campaign that fits it.

The decision is :func:`dripengine.funnel.recycle_plan.decide`, pure; this module reads the snapshots it
needs and writes the rows it asks for, with Core statements that serve one lead
(:func:`recycle`) and a batch of them alike (:func:`load` and :func:`write`, used by
:mod:`dripengine.funnel.recycle_csv`): one query a table to load, one executemany a statement shape to write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from dripengine.funnel.recycle_plan import (
    LEAD_FIELDS,
    OUTCOMES,
    WINDOW_SPREAD,
    EnrollmentSnapshot,
    LeadSnapshot,
    Pending,
    RecycleContext,
    RecycleOutcome,
    RecycleRequest,
    decide,
    format_local,
    request_email,
    suppression_text,
)
from dripengine.leads.nearest import nearest_addresses
from dripengine.storage import suppression
from dripengine.storage.models import (
    Enrollment,
    Lead,
    RecycleRecord,
    ScoreChange,
    StageChange,
    Suppression,
)

__all__ = [
    "LEAD_FIELDS",
    "OUTCOMES",
    "WINDOW_SPREAD",
    "RecycleContext",
    "RecycleOutcome",
    "RecycleRequest",
    "decide",
    "format_local",
    "load",
    "recycle",
    "write",
]

LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
STAGE_CHANGE: Table = StageChange.__table__  # type: ignore[attr-defined]
RECYCLE_RECORD: Table = RecycleRecord.__table__  # type: ignore[attr-defined]
ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
SUPPRESSION: Table = Suppression.__table__  # type: ignore[attr-defined]
SCORE_CHANGE: Table = ScoreChange.__table__  # type: ignore[attr-defined]

_LEAD_READS = ("id", "email", "stage", "score", "recycle_count", "attributes", "created_at")
_LEAD_COLUMNS = [LEAD.c[name] for name in (*_LEAD_READS, "updated_at", *LEAD_FIELDS)]
_ENROLLMENT_COLUMNS = [
    ENROLLMENT.c[name]
    for name in (
        "id",
        "lead_id",
        "campaign_id",
        "campaign_version",
        "status",
        "track",
        "current_step",
        "step_index",
        "round",
        "next_due_at",
        "exit_reason",
        "enrolled_at",
        "updated_at",
        "ended_at",
    )
]


def recycle(session: Session, request: RecycleRequest, ctx: RecycleContext) -> RecycleOutcome:
    """Recycle one lead and enroll it where it fits. Raises FunnelError when it may not be.

    The rows are written in the session's transaction with Core statements; objects the session
    already holds are expired, so they show the recycle when next read.
    """
    email = request_email(request)
    session.flush()
    connection = session.connection()
    pending = load(connection, [email], suggest=0 if ctx.create_leads else 1)
    outcome = pending.recycle(request, ctx)
    write(connection, pending)
    session.expire_all()
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
    for row in connection.execute(select(*_LEAD_COLUMNS).where(LEAD.c.email.in_(wanted))):
        values = row._asdict()
        values["attributes"] = dict(values["attributes"] or {})
        leads[row.email] = LeadSnapshot(**values)
    for email, entry in suppression.suppressed(connection, wanted).items():  # plain and hashed
        suppressed[email] = suppression_text(entry.reason, entry.created_at)
    emails_by_id = {lead.id: email for email, lead in leads.items()}
    if emails_by_id:
        query = (
            select(*_ENROLLMENT_COLUMNS)
            .where(ENROLLMENT.c.lead_id.in_(list(emails_by_id)))
            .order_by(ENROLLMENT.c.id)
        )
        for row in connection.execute(query):
            values = row._asdict()
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
        inserted = connection.execute(
            insert(LEAD).returning(LEAD.c.id, LEAD.c.email),
            [_lead_values(lead) for lead in new_leads],
        )
        ids.update({email: lead_id for lead_id, email in inserted})
    _update(connection, LEAD, pending.lead_updates())
    if pending.stage_changes:
        connection.execute(
            insert(STAGE_CHANGE),
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
        connection.execute(insert(ENROLLMENT), new_enrollments)
    _update(connection, ENROLLMENT, pending.enrollment_updates())
    if pending.score_resets:
        connection.execute(
            insert(SCORE_CHANGE),
            [
                {
                    "lead_id": ids[email],
                    "event_id": None,
                    "delta": -old,
                    "score_after": 0.0,
                    "reason": "reset on recycle (kept in history)",
                    "at": at,
                }
                for email, old, at in pending.score_resets
            ],
        )
    if pending.records:
        connection.execute(
            insert(RECYCLE_RECORD),
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
    values = {column.name: getattr(lead, column.name) for column in _LEAD_COLUMNS[1:]}
    values["attributes"] = dict(lead.attributes)
    return values


def _enrollment_values(row: EnrollmentSnapshot) -> dict[str, Any]:
    return {column.name: getattr(row, column.name) for column in _ENROLLMENT_COLUMNS[2:]}


def _update(
    connection: Connection, table: Table, changes: Iterable[tuple[int, dict[str, Any]]]
) -> None:
    """One executemany per set of changed columns: ``UPDATE … SET <them> WHERE id = :row_id``."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_id, changed in changes:
        if "attributes" in changed:
            changed["attributes"] = dict(changed["attributes"])
        groups[tuple(sorted(changed))].append({"row_id": row_id, **changed})
    statement = update(table).where(table.c.id == bindparam("row_id"))
    for rows in groups.values():
        connection.execute(statement, rows)  # SET takes the columns the rows name
