"""The lead table's writes and look-ups: the bulk upsert of an import, an address's lead, the stored
addresses near an unknown one, and ending a lead's active enrollments.

**Bulk upsert** (:class:`Batch`): one ``INSERT … ON CONFLICT (email) DO UPDATE`` executemany a
batch. A new lead gets the row's fields, its stage (``lead`` if none given) and its attributes. An
existing lead keeps what the row leaves empty (``COALESCE(excluded.x, lead.x)``), gets its
attributes merged in SQL (the row's keys win: SQLite ``json_patch``, PostgreSQL ``jsonb ||``),
keeps its ``created_at`` and its stage — import never moves a lead through the funnel — and gets
``updated_at = now``. One ``SELECT email, stage`` a batch, before the write, tells new from existing
rows, so the counts cost no RETURNING and no row-by-row round trips.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from dripengine.storage.models import CONTACT_FIELDS, ENROLLMENT, LEAD

DEFAULT_STAGE = "lead"
# the columns an imported row may set besides email, stage and attributes (``leads.csvrows.FIELDS``)
FIELDS: tuple[str, ...] = (*CONTACT_FIELDS, "consent")


def like_escaped(text: str) -> str:
    """``text`` matched literally by ``LIKE … ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def lead_id_of(connection: Connection, email: str) -> int | None:
    """The id of the lead with that (normalised) address; None when there is none."""
    return connection.execute(select(LEAD.c.id).where(LEAD.c.email == email)).scalar()


def exit_enrollments(connection: Connection, lead_id: int, reason: str, now: datetime) -> int:
    """Exit every active enrollment of the lead; how many."""
    result = connection.execute(
        update(ENROLLMENT)
        .where(ENROLLMENT.c.lead_id == lead_id, ENROLLMENT.c.status == "active")
        .values(
            status="exited",
            exit_reason=reason[:64],
            ended_at=now,
            next_due_at=None,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


def addresses_like(
    connection: Connection, domains: Collection[str], locals_: Collection[str], limit: int
) -> list[str]:
    """Stored addresses on one of ``domains`` or with one of the local parts ``locals_`` (at most
    ``limit``): the candidates of :func:`dripengine.leads.nearest.nearest_addresses`."""
    conditions = [LEAD.c.email.like(f"%@{like_escaped(d)}", escape="\\") for d in sorted(domains)]
    conditions += [LEAD.c.email.like(f"{like_escaped(p)}@%", escape="\\") for p in sorted(locals_)]
    query = select(LEAD.c.email).where(or_(*conditions)).limit(limit)
    return [stored for (stored,) in connection.execute(query)]


class LeadValues(Protocol):
    """What :meth:`Batch.add` reads of a row (:class:`dripengine.leads.csvrows.LeadRow`)."""

    @property
    def email(self) -> str: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def attributes(self) -> dict[str, str]: ...
    @property
    def fields(self) -> Mapping[str, str | None]: ...


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    ignored_stage: int  # existing leads whose row named a different stage (left unchanged)


def existing_stages(connection: Connection, emails: Sequence[str]) -> dict[str, str]:
    """The current stage of each of ``emails`` that is already a lead.

    One query a batch, the addresses as one parameter (PostgreSQL: an array, ``= ANY``; SQLite: a
    JSON array, ``json_each``), in plain SQL: SQLAlchemy's expanding ``IN`` costs more than the
    query itself, and one parameter meets no limit on their number.
    """
    if not emails:
        return {}
    if connection.dialect.name == "postgresql":
        sql = "SELECT email, stage FROM lead WHERE email = ANY(%s)"
        param: Any = list(emails)
    else:
        sql = "SELECT email, stage FROM lead WHERE email IN (SELECT value FROM json_each(?))"
        param = json.dumps(list(emails))
    return {email: stage for email, stage in connection.exec_driver_sql(sql, (param,)).all()}


class Batch:
    """Rows made ready for the driver as they arrive, then written with one executemany.

    Holding driver-ready tuples instead of row objects keeps a batch out of the garbage
    collector's sight (tuples of strings are untracked), which spares full collections.
    """

    def __init__(self, bind: Engine | Connection, now: datetime) -> None:
        self._compiled = _compiled(bind.dialect)
        stamp = self._compiled.timestamp(now)
        # score, recycle_count, created_at, updated_at, soft_bounces
        self._constants = (0.0, 0, stamp, stamp, 0)
        self._params: list[Any] = []
        self._emails: list[str] = []
        self._staged: list[tuple[str, str]] = []  # (email, stage) of rows that name a stage

    def __len__(self) -> int:
        return len(self._emails)

    def add(self, row: LeadValues) -> None:
        """Add a row; addresses must be distinct within a batch."""
        email, stage = row.email, row.stage
        values = (
            email,
            json_object(row.attributes),
            stage or DEFAULT_STAGE,
            *self._constants,
            *map(row.fields.get, FIELDS),
        )
        self._params.append(self._compiled.arrange(values))
        self._emails.append(email)
        if stage is not None:
            self._staged.append((email, stage))

    def write(self, connection: Connection) -> UpsertCounts:
        """Upsert the rows in the connection's transaction, and empty the batch."""
        if not self._emails:
            return UpsertCounts(0, 0, 0)
        existing = existing_stages(connection, self._emails)
        connection.exec_driver_sql(self._compiled.sql, self._params)
        ignored = sum(1 for email, stage in self._staged if existing.get(email, stage) != stage)
        counts = UpsertCounts(len(self._emails) - len(existing), len(existing), ignored)
        self.clear()
        return counts

    def clear(self) -> None:
        self._params, self._emails, self._staged = [], [], []


def upsert_leads(
    connection: Connection, rows: Iterable[LeadValues], *, now: datetime
) -> UpsertCounts:
    """Insert or update ``rows`` (distinct addresses) in the connection's transaction."""
    batch = Batch(connection, now)
    for row in rows:
        batch.add(row)
    return batch.write(connection)


def json_object(values: dict[str, str]) -> str:
    """``values`` as a JSON object; ``json.dumps`` gives the same value, this is twice as fast."""
    quote = encode_basestring_ascii
    return "{" + ", ".join([f"{quote(k)}: {quote(v)}" for k, v in values.items()]) + "}"


# The order :meth:`Batch.add` builds a row's values in; ``_Compiled.arrange`` maps it to the
# order of the compiled statement's parameters.
_BUILT = (
    "email",
    "attributes",
    "stage",
    "score",
    "recycle_count",
    "created_at",
    "updated_at",
    "soft_bounces",
    *FIELDS,
)


@dataclass(frozen=True)
class _Compiled:
    """The upsert compiled once for a dialect, and how to make driver-ready parameters for it.

    Going through ``exec_driver_sql`` skips SQLAlchemy's per-row parameter processing, which
    costs more than the database's own work here. The timestamp goes through its column's own
    bind processor once a batch; the attributes are JSON text on both backends (PostgreSQL's
    statement casts the parameter to JSONB).
    """

    sql: str
    arrange: Callable[[tuple[Any, ...]], Any]  # a row's values as the driver takes them
    timestamp: Callable[[datetime], Any]


@lru_cache(maxsize=8)
def _compiled(dialect: Dialect) -> _Compiled:
    compiled = _statement(dialect.name).compile(dialect=dialect, column_keys=list(_BUILT))
    arrange: Callable[[tuple[Any, ...]], Any]
    if compiled.positional:
        order = [_BUILT.index(name) for name in compiled.positiontup or ()]
        assert len(order) == len(_BUILT), compiled.positiontup
        arrange = itemgetter(*order)
    else:
        arrange = partial(_named, _BUILT)
    timestamp = LEAD.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return _Compiled(str(compiled), arrange, timestamp or _same)


def _named(names: tuple[str, ...], values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(names, values, strict=True))


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


__all__ = [
    "DEFAULT_STAGE",
    "FIELDS",
    "LEAD",
    "Batch",
    "LeadValues",
    "UpsertCounts",
    "addresses_like",
    "existing_stages",
    "exit_enrollments",
    "json_object",
    "lead_id_of",
    "like_escaped",
    "upsert_leads",
]
