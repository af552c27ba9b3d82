"""The lead table's writes and look-ups: the bulk upsert of an import, an address's lead, the stored
addresses near an unknown one, and ending a lead's active enrollments.

**Bulk upsert** (:class:`Batch`). A new lead gets the row's fields, its stage (``lead`` if none
given) and its attributes. An existing lead keeps what the row leaves empty
(``COALESCE(excluded.x, lead.x)``), gets its attributes merged in SQL (the row's keys win: SQLite
``json_patch``, PostgreSQL ``jsonb ||``), keeps its ``created_at`` and its stage — import never
moves a lead through the funnel — and gets ``updated_at = now``. One ``SET`` clause
(:func:`_updates`) serves both databases; they differ in how the rows reach it:

- SQLite: one ``INSERT … ON CONFLICT (email) DO UPDATE`` executemany a batch, after one ``SELECT
  email, stage`` that tells new from existing rows (in-process, row by row is cheap);
- PostgreSQL: the batch is ``COPY``-ed (binary, psycopg's) into a temporary table, then ONE
  ``INSERT INTO lead … SELECT … FROM`` it ``ON CONFLICT (email) DO UPDATE … RETURNING xmax = 0``
  (true for an inserted row) inside a ``WITH`` that answers the three counts in one row. The
  statement runs while the caller reads the next batch (:meth:`Batch.send`). A statement a row
  (executemany) cost ~43 µs of client and server CPU a new lead; this ~18 (benchmarks/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from dripengine.storage.dialect import Sent, copy_rows
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


class Written:
    """A batch's upsert, done or (PostgreSQL) still running: :meth:`counts` waits for it."""

    def __init__(self, outcome: UpsertCounts | Sent) -> None:
        self._outcome = outcome

    def counts(self) -> UpsertCounts:
        if isinstance(self._outcome, Sent):
            self._outcome = UpsertCounts(*self._outcome.first())
        return self._outcome


def existing_stages(connection: Connection, emails: Sequence[str]) -> dict[str, str]:
    """The current stage of each of ``emails`` that is already a lead (SQLite's upsert).

    One query a batch, the addresses as one JSON array parameter (``json_each``), in plain SQL:
    SQLAlchemy's expanding ``IN`` costs more than the query itself, and one parameter meets no
    limit on their number.
    """
    sql = "SELECT email, stage FROM lead WHERE email IN (SELECT value FROM json_each(?))"
    rows = connection.exec_driver_sql(sql, (json.dumps(list(emails)),)).all()
    return {email: stage for email, stage in rows}


class Batch:
    """Rows made ready for the driver as they arrive, then written in one go (see the module).

    Holding driver-ready tuples instead of row objects keeps a batch out of the garbage
    collector's sight (tuples of strings are untracked), which spares full collections.
    """

    def __init__(self, bind: Engine | Connection, now: datetime) -> None:
        dialect = bind.dialect
        self._copied = _copied(dialect) if dialect.name == "postgresql" else None
        compiled = _compiled(dialect) if self._copied is None else _Compiled("", _same)
        self._sql, self._arrange = compiled.sql, compiled.arrange  # SQLite's
        self._stamp = stamp = _timestamp(dialect)(now)
        # score, recycle_count, created_at, updated_at, soft_bounces
        self._constants = (0.0, 0, stamp, stamp, 0)
        self._params: list[Any] = []
        self._emails: list[str] = []
        self._staged: list[tuple[str, str]] = []  # (email, stage) of rows that name a stage

    def __len__(self) -> int:
        return len(self._params)

    def add(self, row: LeadValues) -> None:
        """Add a row; addresses must be distinct within a batch."""
        email, stage = row.email, row.stage
        if self._copied is not None:  # the staging table's columns, in order
            self._params.append(
                (email, json_object(row.attributes), stage, *map(row.fields.get, FIELDS))
            )
            if stage is not None:
                self._staged.append((email, stage))
            return
        values = (
            email,
            json_object(row.attributes),
            stage or DEFAULT_STAGE,
            *self._constants,
            *map(row.fields.get, FIELDS),
        )
        self._params.append(self._arrange(values))
        self._emails.append(email)
        if stage is not None:
            self._staged.append((email, stage))

    def write(self, connection: Connection) -> UpsertCounts:
        """Upsert the rows in the connection's transaction, and empty the batch."""
        return self.send(connection).counts()

    def send(self, connection: Connection) -> Written:
        """Start upserting the rows in the connection's transaction, and empty the batch.

        On PostgreSQL the upsert is still running when this returns: the caller may go on (read
        the next rows) but must not use the connection before :meth:`Written.counts`.
        """
        if not self._params:
            return Written(UpsertCounts(0, 0, 0))
        if self._copied is not None:
            sent = self._copied.send(connection, self._params, self._stamp, bool(self._staged))
            self.clear()
            return Written(sent)
        existing = existing_stages(connection, self._emails)
        connection.exec_driver_sql(self._sql, self._params)
        ignored = sum(1 for email, stage in self._staged if existing.get(email, stage) != stage)
        counts = UpsertCounts(len(self._emails) - len(existing), len(existing), ignored)
        self.clear()
        return Written(counts)

    def clear(self) -> None:
        self._params, self._emails, self._staged = [], [], []


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
    """SQLite's upsert compiled once, and how to make driver-ready parameters for it.

    Going through ``exec_driver_sql`` skips SQLAlchemy's per-row parameter processing, which
    costs more than the database's own work here. The timestamp goes through its column's own
    bind processor once a batch (:func:`_timestamp`); the attributes are JSON text on both
    backends (PostgreSQL's statement casts them to JSONB).
    """

    sql: str
    arrange: Callable[[tuple[Any, ...]], Any]  # a row's values as the driver takes them


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
    return _Compiled(str(compiled), arrange)


@lru_cache(maxsize=8)
def _timestamp(dialect: Dialect) -> Callable[[datetime], Any]:
    """An aware datetime as the driver takes it for the lead's timestamps."""
    processor = LEAD.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or _same


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
    raise NotImplementedError(f"no bulk upsert for {dialect}")  # pragma: no cover


# PostgreSQL: a batch's rows as they are COPY-ed, one text column each (the attributes as JSON text,
# cast in the INSERT as the executemany's parameter was; the stage NULL when the row names none).
STAGING = Table(
    "lead_import_rows",
    MetaData(),
    *(Column(name, Text) for name in ("email", "attributes", "stage", *FIELDS)),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


@dataclass(frozen=True)
class _Copied:
    """The PostgreSQL batch: create the staging table, COPY into it, upsert from it, drop it.

    The table lives in the transaction (``ON COMMIT DROP``) and is dropped after each batch, so a
    strict import's many batches in one transaction each start from an empty one.
    """

    create: str
    drop: str
    upsert: str  # answers (inserted, updated, 0)
    upsert_staged: str  # answers (inserted, updated, ignored_stage): some rows name a stage

    def send(self, connection: Connection, rows: list[Any], stamp: Any, staged: bool) -> Sent:
        connection.exec_driver_sql(self.create)  # also begins SQLAlchemy's transaction
        copy_rows(connection, STAGING, rows)
        params = {"now": stamp, "default_stage": DEFAULT_STAGE}
        upsert = self.upsert_staged if staged else self.upsert
        return Sent(connection, upsert, params, then=[self.drop])


@lru_cache(maxsize=4)
def _copied(dialect: Dialect) -> _Copied:
    rows = STAGING.c
    now = bindparam("now", type_=LEAD.c.created_at.type)
    zero: ColumnElement[Any] = literal_column("0")
    source = {
        "email": rows.email,
        "attributes": cast(rows.attributes, JSONB),
        "stage": func.coalesce(rows.stage, bindparam("default_stage", type_=Text)),
        **dict.fromkeys(("score", "recycle_count", "soft_bounces"), zero),
        **dict.fromkeys(("created_at", "updated_at"), now),
        **{name: rows[name] for name in FIELDS},
    }
    pg = postgresql.insert(LEAD).from_select(list(source), select(*source.values()))
    merged = LEAD.c.attributes.op("||")(pg.excluded.attributes)
    up = (
        pg.on_conflict_do_update(index_elements=[LEAD.c.email], set_=_updates(pg.excluded, merged))
        .returning(literal_column("xmax = 0").label("inserted"), LEAD.c.email, LEAD.c.stage)
        .cte("up")
    )
    new, old = up.c.inserted, not_(up.c.inserted)
    counts = (func.count().filter(new), func.count().filter(old))
    named = select(rows.email, rows.stage).where(rows.stage.is_not(None)).subquery("named")
    other_stage = func.count().filter(and_(old, named.c.stage != up.c.stage))
    staged = select(*counts, other_stage).select_from(
        up.outerjoin(named, named.c.email == up.c.email)
    )

    def text(statement: Any) -> str:
        return str(statement.compile(dialect=dialect))

    return _Copied(
        create=text(CreateTable(STAGING)),
        drop=text(DropTable(STAGING)),
        upsert=text(select(*counts, literal_column("0"))),
        upsert_staged=text(staged),
    )


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
    "Written",
    "addresses_like",
    "existing_stages",
    "exit_enrollments",
    "json_object",
    "lead_id_of",
    "like_escaped",
]
