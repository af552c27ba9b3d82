"""A batch of recycle decisions over the snapshots of a set of addresses, and the rows they add up to.

:class:`Pending` chains :func:`dripengine.funnel.recycle_plan.decide` over the leads and enrollments
loaded for a batch, so a later request for an address sees what an earlier one did, and says what
to insert and update. Pure: :mod:`dripengine.funnel.recycle` loads the snapshots and writes the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from dripengine.exceptions import LeadNotFound
from dripengine.funnel.recycle_plan import (
    EnrollmentSnapshot,
    LeadSnapshot,
    RecycleRecordRow,
    StageChangeRow,
    decide,
)
from dripengine.funnel.recycle_request import (
    LEAD_FIELDS,
    RecycleContext,
    RecycleOutcome,
    RecycleRequest,
    request_email,
)
from dripengine.funnel.rules import check_reason
from dripengine.suggest import did_you_mean_any

# The columns a recycle may change, compared to tell which rows to update.
LEAD_WRITES = ("stage", "recycle_count", "score", "attributes", "updated_at", *LEAD_FIELDS)
ENROLLMENT_WRITES = tuple(f.name for f in fields(EnrollmentSnapshot) if f.name != "id")


class Pending:
    """Decisions over the snapshots of a set of addresses, and the rows they add up to.

    Each :meth:`recycle` sees the leads and enrollments as the decisions before it left them. The
    writes compare the end state with the snapshots as loaded: a row inserted, or only the columns
    that changed updated.
    """

    def __init__(
        self,
        emails: Collection[str],
        leads: Mapping[str, LeadSnapshot],
        suppressed: Mapping[str, str],
        enrollments: Mapping[str, Sequence[EnrollmentSnapshot]],
    ) -> None:
        self.emails = frozenset(emails)
        self.loaded_leads = dict(leads)
        self.loaded_enrollments = {email: tuple(rows) for email, rows in enrollments.items()}
        self.suppressed = dict(suppressed)
        self.leads = dict(self.loaded_leads)
        self.enrollments = dict(self.loaded_enrollments)
        self.stage_changes: list[StageChangeRow] = []
        self.records: list[RecycleRecordRow] = []
        self.score_resets: list[tuple[str, float, datetime]] = []  # (email, old score, when)
        self.nearest: dict[str, list[str]] = {}  # unknown address -> nearest stored ones

    def recycle(self, request: RecycleRequest, ctx: RecycleContext) -> RecycleOutcome:
        """Decide one request; nothing changes when it is refused (FunnelError)."""
        email = request_email(request)
        if email not in self.emails:
            raise KeyError(f"{email} was not loaded with this batch")
        if not ctx.create_leads and email not in self.leads and email not in self.suppressed:
            check_reason(request.reason.strip().lower(), ctx.sla.reason_stages)  # that first
            raise LeadNotFound(
                f"no lead {email}{did_you_mean_any(self.nearest.get(email, ()))}; "
                "to add it as a new lead, recycle it with --create"
            )
        decision = decide(
            self.leads.get(email),
            self.suppressed.get(email),
            self.enrollments.get(email, ()),
            request,
            ctx,
        )
        before = self.leads.get(email)
        if before is not None and before.score > 0 and decision.lead.score == 0:
            self.score_resets.append((email, before.score, decision.lead.updated_at))
        self.leads[email] = decision.lead
        self.enrollments[email] = decision.enrollments
        self.stage_changes.extend(decision.stage_changes)
        self.records.append(decision.record)
        return decision.outcome

    def new_leads(self) -> list[LeadSnapshot]:
        return [lead for email, lead in self.leads.items() if email not in self.loaded_leads]

    def lead_updates(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(id, changed columns)`` of each stored lead a decision changed."""
        for email, before in self.loaded_leads.items():
            after = self.leads[email]
            if after is not before and before.id is not None:
                changed = _changed(before, after, LEAD_WRITES)
                if changed:
                    yield before.id, changed

    def new_enrollments(self) -> Iterator[tuple[str, EnrollmentSnapshot]]:
        """``(lead email, enrollment)`` of each enrollment to insert."""
        for email, rows in self.enrollments.items():
            for row in rows:
                if row.id is None:
                    yield email, row

    def enrollment_updates(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for email, rows in self.enrollments.items():
            loaded = {row.id: row for row in self.loaded_enrollments.get(email, ())}
            for row in rows:
                before = loaded.get(row.id) if row.id is not None else None
                if before is not None and row is not before and row.id is not None:
                    changed = _changed(before, row, ENROLLMENT_WRITES)
                    if changed:
                        yield row.id, changed


def _changed(before: Any, after: Any, names: Sequence[str]) -> dict[str, Any]:
    return {
        name: getattr(after, name)
        for name in names
        if getattr(after, name) != getattr(before, name)
    }
