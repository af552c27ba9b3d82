"""Bulk recycling from a CSV of lost deals: the same rules as one ``drip recycle``, row by row.

Each row runs in its own savepoint, so a refused row (suppressed, a customer, an unknown reason)
is reported with its line number and the rows around it are kept. ``strict`` keeps nothing if any
row is refused.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError, ImportFileError
from dripengine.leads.csvrows import CsvRecord, read_csv_records
from dripengine.recycling import (
    LEAD_FIELDS,
    RecycleContext,
    RecycleOutcome,
    RecycleRequest,
    recycle,
)

FROM_ALIASES = ("from_stage", "from", "stage", "lifecycle_stage")
RECYCLE_COLUMNS = frozenset({"email", "reason", "note", "actor", *FROM_ALIASES})
COMMIT_EVERY = 500


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
) -> BulkReport:
    started = time.perf_counter()
    report = BulkReport()
    seen: dict[str, int] = {}
    with Session(engine, expire_on_commit=False) as session:
        for record in records:
            report.rows_read += 1
            email = record.values.get("email", "").strip()
            try:
                if record.surplus:
                    raise DripError(
                        f"{record.surplus} more field(s) than the header has columns; "
                        "quote values that contain the delimiter"
                    )
                with suppress(InvalidEmail):
                    email = normalise_email(email)
                if email in seen:
                    raise DripError(f"{email} already appears on line {seen[email]}")
                request = request_from_record(record, actor)
                with session.begin_nested():
                    outcome = recycle(session, request, ctx)
                seen[outcome.email] = record.line
                report.outcomes[outcome.outcome] += 1
                report.results.append(outcome)
            except DripError as exc:
                report.errors.append(RowProblem(record.line, email, exc.message))
            if not strict and report.rows_read % COMMIT_EVERY == 0:
                session.commit()
            if progress is not None:
                progress(report.rows_read)
        if strict and report.errors:
            session.rollback()
            report.committed = False
        else:
            session.commit()
    report.seconds = time.perf_counter() - started
    return report
