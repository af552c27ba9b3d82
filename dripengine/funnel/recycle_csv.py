"""Bulk recycling from a CSV of lost deals: the same rules as one ``drip recycle``, a batch at a time.

Rows are read in batches. A batch's leads, suppressions and enrollments are loaded with one query
each; every row is decided in file order by :func:`dripengine.funnel.recycle_plan.decide` against those
snapshots (a row sees what the rows before it did); then the batch is written with one executemany
a statement and committed. A refused row (suppressed, a customer, an unknown reason) changes
nothing and is reported with its line number; the rows around it are kept. ``strict`` writes in
one transaction and keeps nothing if any row is refused.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError, ImportFileError
from dripengine.funnel.recycle import load, write
from dripengine.funnel.recycle_batch import Pending
from dripengine.funnel.recycle_request import (
    LEAD_FIELDS,
    RecycleContext,
    RecycleOutcome,
    RecycleRequest,
)
from dripengine.leads.csvfile import CsvRecord, read_csv_records
from dripengine.storage import Engine

FROM_ALIASES = ("from_stage", "from", "stage", "lifecycle_stage")
RECYCLE_COLUMNS = frozenset({"email", "reason", "note", "actor", *FROM_ALIASES})
BATCH_SIZE = 500  # rows decided against one load and written with one executemany
SUGGESTED = 20  # unknown addresses given their nearest stored ones, per file (the rest: a count)


@dataclass(frozen=True)
class RowProblem:
    line: int
    email: str
    message: str


@dataclass
class BulkReport:
    rows_read: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    results: list[RecycleOutcome] = field(default_factory=list)
    result_lines: list[int] = field(default_factory=list)  # the CSV line of each result
    errors: list[RowProblem] = field(default_factory=list)
    seconds: float = 0.0
    committed: bool = True

    @property
    def recycled(self) -> int:
        return sum(self.outcomes.values())


def request_from_record(record: CsvRecord, default_actor: str | None) -> RecycleRequest:
    values = record.values
    reason = values.get("reason", "")
    if not reason:
        raise DripError("no reason given (the reason column is empty)")
    from_stage = next((values[a] for a in FROM_ALIASES if values.get(a)), None)
    lead_fields = {k: v for k, v in values.items() if k in LEAD_FIELDS and v}
    attributes: dict[str, Any] = {
        k: v for k, v in values.items() if k not in RECYCLE_COLUMNS and k not in LEAD_FIELDS and v
    }
    return RecycleRequest(
        email=values.get("email", ""),
        reason=reason,
        from_stage=from_stage,
        note=values.get("note") or None,
        actor=values.get("actor") or default_actor,
        lead_fields=lead_fields,
        attributes=attributes,
    )


def recycle_file(
    engine: Engine,
    path: Path,
    ctx: RecycleContext,
    *,
    actor: str | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BulkReport:
    header, records = read_csv_records(path)
    missing = [c for c in ("email", "reason") if c not in header]
    if missing:
        raise ImportFileError(
            f"{path}: no {' or '.join(missing)} column; found columns: {', '.join(header)}"
        )
    return recycle_records(engine, records, ctx, actor=actor, strict=strict, progress=progress)


def recycle_records(
    engine: Engine,
    records: Iterable[CsvRecord],
    ctx: RecycleContext,
    *,
    actor: str | None = None,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> BulkReport:
    started = time.perf_counter()
    report = BulkReport()
    seen: dict[str, int] = {}
    rows = iter(records)
    suggest = 0 if ctx.create_leads else SUGGESTED
    with engine.connect() as connection:
        while batch := [_Row.of(record, actor) for record in islice(rows, batch_size)]:
            # file order: the first unknown addresses of the file get the suggestions
            emails = list(dict.fromkeys(row.email for row in batch if row.valid))
            pending = load(connection, emails, suggest=suggest)
            suggest -= len(pending.nearest)
            for row in batch:
                report.rows_read += 1
                try:
                    outcome = row.recycle(pending, ctx, seen)
                    seen[outcome.email] = row.line
                    report.outcomes[outcome.outcome] += 1
                    report.results.append(outcome)
                    report.result_lines.append(row.line)
                except DripError as exc:
                    report.errors.append(RowProblem(row.line, row.email, exc.message))
            write(connection, pending)
            if not strict:
                connection.commit()
            if progress is not None:
                progress(report.rows_read)
        if strict and report.errors:
            connection.rollback()
            report.committed = False
        else:
            connection.commit()
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Row:
    """A CSV row made ready for its batch: what can be known without the database."""

    line: int
    email: str  # normalised when valid, as typed (stripped) otherwise
    valid: bool
    surplus: int
    request: RecycleRequest | DripError
    problem: bool = False  # the row could not be read as CSV: nothing else about it is known

    @classmethod
    def of(cls, record: CsvRecord, actor: str | None) -> _Row:
        if record.problem is not None:
            return cls(record.line, "", False, 0, DripError(record.problem), problem=True)
        email = record.values.get("email", "").strip()
        valid = False
        with suppress(InvalidEmail):
            email, valid = normalise_email(email), True
        request: RecycleRequest | DripError
        try:
            request = request_from_record(record, actor)
        except DripError as exc:
            request = exc
        return cls(record.line, email, valid, record.surplus, request)

    def recycle(
        self, pending: Pending, ctx: RecycleContext, seen: dict[str, int]
    ) -> RecycleOutcome:
        """The row's outcome, or the DripError that refuses it, checked in this order."""
        if isinstance(self.request, DripError) and self.problem:
            raise self.request
        if self.surplus:
            raise DripError(
                f"{self.surplus} more field(s) than the header has columns; "
                "quote values that contain the delimiter"
            )
        if self.email in seen:
            raise DripError(f"{self.email} already appears on line {seen[self.email]}")
        if isinstance(self.request, DripError):
            raise self.request
        return pending.recycle(self.request, ctx)
