"""Bulk upsert of lead rows: one ``INSERT … ON CONFLICT (email) DO UPDATE`` executemany a batch.

A new lead gets the row's fields, its stage (``lead`` if none given) and its attributes. An existing
lead keeps what the row leaves empty (``COALESCE(excluded.x, lead.x)``), gets its attributes merged
in SQL (the row's keys win: SQLite ``json_patch``, PostgreSQL ``jsonb ||``), keeps its
``created_at`` and its stage — import never moves a lead through the funnel — and gets
``updated_at = now``.

One ``SELECT email, stage … WHERE email IN (…)`` a batch tells new from existing rows before the
write, so the counts cost no RETURNING and no row-by-row round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from dripengine.leads.csvrows import FIELDS, LeadRow
from dripengine.models import Lead

__all__ = ["UpsertCounts", "existing_stages", "upsert_leads"]

LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
DEFAULT_STAGE = "lead"
IN_CHUNK = 1000  # addresses per IN (…): well under every backend's limit on bound parameters


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    ignored_stage: int  # existing leads whose row named a different stage (left unchanged)


def existing_stages(connection: Connection, emails: Sequence[str]) -> dict[str, str]:
    """The current stage of each of ``emails`` that is already a lead.

    Plain SQL on the driver: SQLAlchemy's expanding ``IN`` costs more than the query itself.
    PostgreSQL takes the batch as one array (``= ANY``); SQLite in chunks of ``IN (?, …)``.
    """
    found: dict[str, str] = {}
    if connection.dialect.name == "postgresql":
        sql = "SELECT email, stage FROM lead WHERE email = ANY(%s)"
        found.update(iter(connection.exec_driver_sql(sql, (list(emails),)).tuples()))
        return found
    for start in range(0, len(emails), IN_CHUNK):
        chunk = tuple(emails[start : start + IN_CHUNK])
        sql = f"SELECT email, stage FROM lead WHERE email IN ({', '.join('?' * len(chunk))})"
        # iter(): a Result has .keys(), which dict.update would take for a mapping
        found.update(iter(connection.exec_driver_sql(sql, chunk).tuples()))
    return found


def upsert_leads(connection: Connection, rows: Sequence[LeadRow], *, now: datetime) -> UpsertCounts:
    """Insert or update ``rows`` (distinct addresses) in the connection's transaction."""
    if not rows:
        return UpsertCounts(0, 0, 0)
    existing = existing_stages(connection, [row.email for row in rows])
    compiled = _compiled(connection.dialect)
    stamp = compiled.timestamp(now)
    base: dict[str, Any] = dict.fromkeys(FIELDS)
    base.update(score=0.0, recycle_count=0, created_at=stamp, updated_at=stamp)
    attributes, empty = compiled.attributes, compiled.attributes({})
    arrange = compiled.arrange
    params = []
    ignored = 0
    for row in rows:
        values = base.copy()
        values.update(row.fields)
        values["email"] = row.email
        values["stage"] = row.stage or DEFAULT_STAGE
        values["attributes"] = attributes(row.attributes) if row.attributes else empty
        params.append(arrange(values))
        if row.stage is not None and row.stage != existing.get(row.email, row.stage):
            ignored += 1
    connection.exec_driver_sql(compiled.sql, params)
    return UpsertCounts(len(rows) - len(existing), len(existing), ignored)


@dataclass(frozen=True)
class _Compiled:
    """The upsert compiled once for a dialect, and how to make driver-ready parameters for it.

    Going through ``exec_driver_sql`` skips SQLAlchemy's per-row parameter processing, which
    costs more than the database's own work here; the few values that need processing (the
    timestamp, once a batch; the attributes' JSON) go through the columns' own bind processors.
    """

    sql: str
    arrange: Callable[[dict[str, Any]], Any]  # a row's values as the driver takes them
    timestamp: Callable[[datetime], Any]
    attributes: Callable[[dict[str, Any]], Any]


@lru_cache(maxsize=8)
def _compiled(dialect: Dialect) -> _Compiled:
    columns = [
        "email",
        *FIELDS,
        "attributes",
        "stage",
        "score",
        "recycle_count",
        "created_at",
        "updated_at",
    ]
    compiled = _statement(dialect.name).compile(dialect=dialect, column_keys=columns)
    arrange: Callable[[dict[str, Any]], Any]
    if compiled.positional:
        order = compiled.positiontup or []
        getter = itemgetter(*order)
        arrange = getter
    else:
        arrange = _same
    return _Compiled(
        sql=str(compiled),
        arrange=arrange,
        timestamp=_processor(LEAD.c.created_at.type, dialect),
        attributes=_processor(LEAD.c.attributes.type, dialect),
    )


def _processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any]:
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


@lru_cache(maxsize=4)
def _statement(dialect: str) -> Insert:
    if dialect == "sqlite":
        lite = sqlite.insert(LEAD)
        merged: ColumnElement[Any] = func.json_patch(LEAD.c.attributes, lite.excluded.attributes)
        return lite.on_conflict_do_update(
            index_elements=[LEAD.c.email], set_=_updates(lite.excluded, merged)
        )
    if dialect == "postgresql":
        pg = postgresql.insert(LEAD)
        merged = LEAD.c.attributes.op("||")(pg.excluded.attributes)
        return pg.on_conflict_do_update(
            index_elements=[LEAD.c.email], set_=_updates(pg.excluded, merged)
        )
    raise NotImplementedError(f"no bulk upsert for {dialect}")  # pragma: no cover


def _updates(excluded: Any, merged: ColumnElement[Any]) -> dict[str, Any]:
    """The SET clause: non-empty row values win, attributes merged, stage and created_at kept."""
    kept = {name: func.coalesce(excluded[name], LEAD.c[name]) for name in FIELDS}
    return {**kept, "attributes": merged, "updated_at": excluded.updated_at}
