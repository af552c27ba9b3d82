"""The statement forms that differ by database, chosen in one place.

``INSERT … ON CONFLICT``: SQLAlchemy's portable ``insert()`` has no ``ON CONFLICT``; PostgreSQL's and
SQLite's dialect ``insert()`` both have ``on_conflict_do_nothing`` and ``on_conflict_do_update``
with the same arguments, so :func:`insert` picks the dialect's for a connection.

Set-based statements for a batch of rows: on PostgreSQL, one array per column, bound once.

The dispatcher reads and writes a batch (200 to 500 rows) at a time. Written the portable way, such a
statement carries one bound parameter per value — ``id IN (:id_1, …, :id_200)``, a 2,400-parameter
multi-row ``INSERT``, an ``UPDATE`` executed once per row — and on PostgreSQL each of those costs
client CPU on every execution: the SQL text differs with the batch size, so neither psycopg (it
caches the parsing of statements of ≤ 50 parameters only) nor the server can reuse any work, and
SQLAlchemy renders the expanded text again. Here each column's values travel as one array
parameter instead, so the statement text is the same for every batch:

- :func:`any_of` — ``column = ANY(:values)`` (PostgreSQL) for ``column IN (…)``;
- :func:`unnest` — ``SELECT unnest(:a) AS a, unnest(:b) AS b, …``: the rows as a table, which an
  ``UPDATE … FROM`` or an ``INSERT … SELECT`` consumes in one statement (PostgreSQL walks several
  ``unnest`` calls in one select list in step).
- :func:`json_rows` / :func:`table_rows` — ``SELECT … FROM json_to_recordset(:rows) AS v(a integer, b text, …)``: the
  rows as one JSON document, for wide rows of free text and JSON (events). psycopg writes an array
  parameter in Python, escaping every element that needs quotes with a regular expression (for a
  JSON column, every quote of every value): 1,000 event rows of 13 columns cost ~40 ms of client
  CPU that way, ~2 ms as one document encoded by orjson (C) and parsed by the server.

Measured on PostgreSQL 15 over loopback, client CPU for 200 rows (mean of 30, one transaction
each): ``SELECT * FROM enrollment WHERE id IN (…)`` 4.0 ms, ``= ANY(:ids)`` 2.2 ms; seven columns
updated by ``executemany`` 6.6 ms, by ``UPDATE … FROM unnest(…)`` 4.9 ms.
SQLite keeps the portable forms: it has no arrays, and it runs in-process, where there is no
parsing or round trip to save.

- :func:`copy_rows` — ``COPY table FROM STDIN`` (PostgreSQL): many rows into a (temporary) table
  through psycopg's own binary COPY, in the connection's transaction; a set-based statement then
  takes them from there. No escaping of ours: binary COPY sends each value's bytes as they are.
- :class:`Sent` — a statement sent through a psycopg pipeline and answered later, so that the
  database works on it while Python goes on (the next batch of an import).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from dripengine.storage.types import UTCDateTime

# transactions that write at once from one process, where it helps: PostgreSQL runs them side by
# side (each waits mostly for the server's answers); SQLite has a single writer
POSTGRES_WRITERS = 4


def concurrent_writers(bind: Connection | Engine) -> int:
    """How many write transactions one process should keep going at once on ``bind``'s database."""
    return 1 if bind.dialect.name == "sqlite" else POSTGRES_WRITERS


def uses_arrays(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def any_of(
    connection: Connection, column: Column[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column IN values``: one array parameter on PostgreSQL, an expanding ``IN`` elsewhere."""
    if uses_arrays(connection):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def unnest(
    table: Table, columns: Sequence[str], rows: Collection[dict[str, Any]], *, name: str = "v"
) -> Select[Any]:
    """``SELECT unnest(:v_a) AS a, …`` over ``rows`` (PostgreSQL): one array per column.

    Each array is typed as its column (``CAST(… AS type[])``), so ``NULL``s and SQLAlchemy's type
    conversions (aware datetimes) behave as they do for a single row.
    """
    return select(
        *(
            func.unnest(
                bindparam(f"{name}_{c}", [row[c] for row in rows], type_=ARRAY(table.c[c].type)),
                type_=table.c[c].type,
            ).label(c)
            for c in columns
        )
    )


def in_values(dialect_name: str, column: Column[Any], name: str) -> ColumnElement[bool]:
    """``column IN :name``, built once and bound at each execution (``{name: [values]}``): one
    array parameter on PostgreSQL (``= ANY(:name)``), an expanding ``IN`` elsewhere. Building a
    statement is a good part of what SQLAlchemy costs per execution (~0.2-0.4 ms for the ingest's
    look-ups); a statement built once per database is only looked up in the compiled cache."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def in_json_values(dialect_name: str, column: Column[Any], name: str) -> ColumnElement[bool]:
    """``column IN :name`` for many strings, bound as one JSON array (``{name: orjson text}``) on
    PostgreSQL: ``column = ANY(ARRAY(SELECT json_array_elements_text(:name)))``. psycopg writes a
    text array element by element in Python (~1.5 µs each, a regular expression per element);
    orjson writes the document in C. An expanding ``IN`` elsewhere (bind the list itself)."""
    if dialect_name == "postgresql":
        elements = select(func.json_array_elements_text(cast(bindparam(name, type_=Text), JSON)))
        return column == any_(func.array(elements.scalar_subquery()))
    return column.in_(bindparam(name, expanding=True))


def json_list(dialect_name: str, values: Sequence[str]) -> Any:
    """What to bind for an :func:`in_json_values` parameter."""
    return orjson.dumps(list(values)).decode() if dialect_name == "postgresql" else list(values)


def json_document(
    table: Table, columns: Sequence[str], rows: Collection[dict[str, Any]]
) -> str | None:
    """``rows`` as the JSON document :func:`json_rows` reads, or None when a value cannot travel
    as JSON the way it binds (a naive datetime, a NUL character, an infinite or NaN float, a type
    JSON has no form for): the caller then takes :func:`unnest`, which refuses or converts such a
    value exactly as a single-row statement does. Inside a JSON column's value only NUL is looked
    for: the dicts stored there come from parsed JSON, which has no infinities."""
    for c in columns:
        kind = table.c[c].type
        if isinstance(kind, DateTime | UTCDateTime) and any(
            row[c] is not None and row[c].tzinfo is None for row in rows
        ):
            return None
        if isinstance(kind, Float) and not all(
            row[c] is None or math.isfinite(row[c]) for row in rows
        ):
            return None  # orjson writes inf and nan as null
    try:
        document = orjson.dumps([{c: row[c] for c in columns} for row in rows])
    except TypeError:
        return None
    if b"\\u0000" in document:  # PostgreSQL's text and jsonb cannot hold NUL
        return None
    return document.decode()


def json_rows(table: Table, columns: Sequence[str], *, name: str = "v") -> Select[Any]:
    """``SELECT … FROM json_to_recordset(:name) AS name(a type, …)`` (PostgreSQL), each column
    typed as ``table``'s; bind ``{name: json_document(…)}``. Built once per column list."""
    records = (
        func.json_to_recordset(cast(bindparam(name, type_=Text), JSON))
        .table_valued(*(column(c, table.c[c].type) for c in columns))
        .render_derived(name=name, with_types=True)
    )
    return select(*(records.c[c] for c in columns))


def table_rows(
    table: Table, columns: Sequence[str], rows: Collection[dict[str, Any]], *, name: str = "v"
) -> tuple[Select[Any], dict[str, Any]]:
    """``rows`` as a table (PostgreSQL) and the parameters to bind: one JSON document
    (:func:`json_rows`, the statement built once per column list), else one array a column
    (:func:`unnest`)."""
    document = json_document(table, columns, rows)
    if document is None:
        return unnest(table, columns, rows, name=name), {}
    return _json_rows(table, tuple(columns), name), {name: document}


@cache
def _json_rows(table: Table, columns: tuple[str, ...], name: str) -> Select[Any]:
    return json_rows(table, columns, name=name)


def insert(connection: Connection, table: Table) -> Any:
    """``table``'s ``INSERT`` for ``connection``'s database, with ``on_conflict_*`` available."""
    return insert_for(connection.dialect.name, table)


def insert_for(dialect_name: str, table: Table) -> Any:
    """``table``'s ``INSERT`` for the database named, with ``on_conflict_*`` available."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def copy_rows(connection: Connection, table: Table, rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (its columns) FROM STDIN (FORMAT BINARY)`` of ``rows`` (PostgreSQL, psycopg).

    The rows go through the psycopg connection under ``connection``, in its transaction (begin it
    first: SQLAlchemy does not see this statement). Each row holds the table's columns in order,
    ``None`` for NULL; the columns' types are ones psycopg knows by name (``text``, ``integer``).
    """
    from psycopg import sql  # PostgreSQL only: not imported for SQLite

    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns.keys()))
    )
    types = [column.type.compile(connection.dialect).lower() for column in table.columns]
    driver = _driver(connection)
    with (
        driver_errors(connection, statement.as_string(driver)),
        driver.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


class Sent:
    """A statement sent through a psycopg pipeline (PostgreSQL), its answer read later.

    The database works on it while the caller goes on (reading the next rows of an import); until
    :meth:`first`, nothing else may use the connection. ``then``: statements sent right after it,
    in the same pipeline, whose results are not needed.
    """

    def __init__(
        self,
        connection: Connection,
        statement: str,
        params: Mapping[str, Any],
        then: Sequence[str] = (),
    ) -> None:
        self._connection, self._statement = connection, statement
        driver = _driver(connection)
        with driver_errors(connection, statement), ExitStack() as opened:
            opened.enter_context(driver.pipeline())
            self._cursor = opened.enter_context(driver.cursor())
            self._cursor.execute(statement, params)
            for more in then:
                opened.enter_context(driver.cursor()).execute(more)
            self._open = opened.pop_all()  # kept open past this call

    def first(self) -> tuple[Any, ...]:
        """The statement's first row (waiting for it); the pipeline is then closed."""
        with driver_errors(self._connection, self._statement), self._open:
            row = self._cursor.fetchone()
        assert row is not None, self._statement
        return tuple(row)


@contextmanager
def driver_errors(connection: Connection, statement: str) -> Iterator[None]:
    """psycopg's errors raised as SQLAlchemy raises them for its own statements (a
    :class:`~sqlalchemy.exc.DBAPIError` subclass, without the values), for statements sent to the
    driver directly."""
    base = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        raise DBAPIError.instance(
            statement, None, exc, base, hide_parameters=True, dialect=connection.dialect
        ) from exc


def _driver(connection: Connection) -> Any:
    """The psycopg connection under ``connection`` (the same transaction)."""
    driver = connection.connection.driver_connection
    assert driver is not None, "no live database connection"
    return driver


__all__ = [
    "POSTGRES_WRITERS",
    "Sent",
    "any_of",
    "concurrent_writers",
    "copy_rows",
    "driver_errors",
    "in_json_values",
    "in_values",
    "insert",
    "insert_for",
    "json_document",
    "json_list",
    "json_rows",
    "table_rows",
    "unnest",
    "uses_arrays",
]
