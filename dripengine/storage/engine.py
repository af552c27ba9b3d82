"""The storage boundary: engines, sessions and schema migrations.

SQLite gets WAL, a busy timeout and foreign keys on every connection. PostgreSQL is used as is
(``postgresql+psycopg://``). The schema is owned by Alembic revisions shipped in
``dripengine/storage/migrations``; :func:`upgrade` brings any database to the newest one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, create_engine

from dripengine.exceptions import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

    from dripengine.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in ``migrations/versions``, so that every command's "is the database
# current?" check does not import Alembic (~0.15 s of each `drip run` start); a test holds it to
# what Alembic's ScriptDirectory finds. A new migration updates it.
HEAD_REVISION = "0008"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def open_engine(settings: Settings) -> Engine:
    """The engine of ``settings``: its database URL with the ``[database]`` pool settings."""
    database = settings.database
    return make_engine(
        settings.database_url,
        echo=database.echo,
        pool_size=database.pool_size,
        max_overflow=database.max_overflow,
        pool_timeout=database.pool_timeout,
        pgbouncer=database.pgbouncer,
    )


def make_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    pgbouncer: bool = False,
) -> Engine:
    """An engine for ``url`` with the connection settings dripengine relies on.

    On PostgreSQL each process keeps up to ``pool_size`` connections open and opens up to
    ``max_overflow`` more when all are busy; past that a caller waits ``pool_timeout`` seconds.
    ``pgbouncer``: the server behind the URL is PgBouncer in transaction pooling mode, where each
    transaction may run on another server connection. dripengine keeps no session state between
    transactions (no ``SET``, advisory locks only ``pg_advisory_xact_lock``, no LISTEN, temporary
    tables or held cursors: docs/operations.md), but psycopg prepares a statement on the server
    once a connection ran it 5 times; ``prepare_threshold=None`` turns that off, since the next
    transaction's server connection does not have it (or has another client's under that name).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # hide_parameters: an error's text (a log line, a message) never carries a lead's values
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args={"prepare_threshold": None} if pgbouncer else {},
    )


def ping(engine: Engine) -> None:
    """``SELECT 1`` on a connection of ``engine``'s pool: raises when the database does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# psycopg's own prepared statements (``_pg3_0``) missing or there twice: another client's server
# connection, as PgBouncer's transaction pooling hands them out
PSYCOPG_PREPARED = re.compile(r'prepared statement "_pg3_\d+" (?:already exists|does not exist)')
PGBOUNCER_HINT = (
    "is the database behind PgBouncer in transaction pooling mode? "
    "set database.pgbouncer = true (DRIP_DATABASE_PGBOUNCER=true)"
)


def database_error_reason(exc: BaseException) -> str | None:
    """When ``exc`` is an error the database driver raised (SQLAlchemy's ``DBAPIError``), the
    driver's first line only (PostgreSQL's DETAIL line quotes the row's values); for a full
    connection pool, which settings to change; else None."""
    if isinstance(exc, PoolTimeout):
        return (
            "no database connection came free within database.pool_timeout: this process has "
            "database.pool_size + database.max_overflow in use (raise them, or the timeout; "
            "docs/operations.md)"
        )
    if not isinstance(exc, DBAPIError):
        return None
    orig = str(getattr(exc, "orig", "")).strip()
    reason = orig.splitlines()[0] if orig else "failed"
    if PSYCOPG_PREPARED.search(reason):
        reason += f" ({PGBOUNCER_HINT})"
    return reason


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back on an error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


# pg_advisory_xact_lock's key for "migrating this database" ("dripmig" in ASCII)
MIGRATION_LOCK = 0x647269706D6967


def lock_schema(connection: Connection) -> None:
    """On PostgreSQL, hold the migration lock until the transaction ends (an advisory lock: any
    number of processes on any number of hosts). PostgreSQL migrates in one transaction; SQLite
    does not (Alembic commits its DDL as it goes), so SQLite is locked around the whole upgrade
    instead (:func:`_sqlite_migration_lock`)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive ``flock`` on the database file for the whole upgrade: a second process waits.

    flock is separate from SQLite's own (fcntl) locks, so readers and writers are not blocked. Where
    there is no flock (Windows) or no file (``:memory:``), nothing is locked.
    """
    database = engine.url.database
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        fcntl = None  # type: ignore[assignment]
    if fcntl is None or not database or database == ":memory:":
        yield
        return
    with open(database, "ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision``; rows already stored are kept. Returns the revision
    the database was at when this process got the migration lock (``None``: empty), so a caller
    that waited for another upgrade knows it found the schema current."""
    from alembic import command

    cfg = alembic_config(engine)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with _sqlite_migration_lock(engine) if sqlite else nullcontext():
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise DatabaseError(f"cannot migrate {engine.url!r}: {exc.orig}") from None
    before: str | None = cfg.attributes.get("before")
    return before


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision in the database's ``alembic_version`` table; None without one."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    return HEAD_REVISION


def scripts_head() -> str | None:
    """The head revision as Alembic finds it in ``migrations/versions`` (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that is missing or behind the code, with the fix named."""
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        raise DatabaseError(f"cannot open the database: {exc.orig}") from None
    if current is None:
        raise DatabaseError(
            f"the database at {engine.url!r} has no dripengine schema: run `drip db upgrade` "
            "(or `drip init` for a new folder)"
        )
    if current != head_revision():
        raise DatabaseError(
            f"the database is at revision {current}, the code needs {head_revision()}: "
            "run `drip db upgrade`"
        )
