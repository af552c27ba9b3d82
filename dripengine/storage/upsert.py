"""``INSERT … ON CONFLICT`` on both databases: the dialect's own ``insert`` for a connection.

SQLAlchemy's portable ``insert()`` has no ``ON CONFLICT``; PostgreSQL's and SQLite's dialect
``insert()`` both have ``on_conflict_do_nothing`` and ``on_conflict_do_update`` with the same
arguments, so code that needs them picks the dialect's here, once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert(connection: Connection, table: Table) -> Any:
    """``table``'s ``INSERT`` for ``connection``'s database, with ``on_conflict_*`` available."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


__all__ = ["insert"]
