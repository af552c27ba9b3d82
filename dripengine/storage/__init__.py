"""The storage boundary: engines, tables, migrations, and the queries other packages call.

Packages outside ``storage/`` do not build SQL. They hold an :data:`Engine` (or, inside a
transaction a storage function opened, a :data:`Connection`) as an opaque handle and pass it to the
functions of ``storage/`` modules; those are the only modules that import SQLAlchemy or SQLModel
(with the web and CLI wiring that opens the engine).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection, Engine

__all__ = ["Connection", "Engine"]
