"""The storage boundary: engines, tables, migrations, and the queries other packages call.

Packages outside ``storage/`` do not build SQL. They hold an :data:`Engine` (or, inside a
transaction a storage function opened, a :data:`Connection`) as an opaque handle and pass it to the
functions of ``storage/`` modules; those are the only modules that import SQLAlchemy or SQLModel
(with the web and CLI wiring that opens the engine). :data:`DBAPIError` is what a failed statement
raises, for the places that answer "try again" instead of failing; :data:`Session` (SQLModel's,
imported on first use: it costs ~0.15 s) is the handle of the read queries that return models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from sqlmodel import Session

__all__ = ["Connection", "DBAPIError", "Engine", "Session"]


def __getattr__(name: str) -> Any:
    if name == "Session":
        from sqlmodel import Session

        return Session
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
