"""``[database]`` pool settings and the PgBouncer mode, as PostgreSQL sees them."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dripengine.config import load_settings
from dripengine.storage.engine import database_error_reason, open_engine

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def settings_for(db_url: str, **database: str) -> dict[str, str]:
    return {"DRIP_DATABASE_URL": db_url} | {
        f"DRIP_DATABASE_{k.upper()}": v for k, v in database.items()
    }


def test_a_full_pool_waits_pool_timeout_then_says_so(db_url: str) -> None:
    env = settings_for(db_url, pool_size="1", max_overflow="1", pool_timeout="0.3")
    engine = open_engine(load_settings(env=env))
    try:
        with engine.connect(), engine.connect():  # the pool and its one overflow
            started = time.monotonic()
            with pytest.raises(PoolTimeout) as full, engine.connect():
                pass
            assert 0.25 < time.monotonic() - started < 5
            said = database_error_reason(full.value)  # what the CLI prints after "database error:"
            assert said is not None and "database.pool_size + database.max_overflow" in said
        with engine.connect() as connection:  # given back: there is one again
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(("pgbouncer", "prepared"), [("false", True), ("true", False)])
def test_the_pgbouncer_mode_prepares_nothing_on_the_server(
    db_url: str, pgbouncer: str, prepared: bool
) -> None:
    engine = open_engine(load_settings(env=settings_for(db_url, pgbouncer=pgbouncer)))
    try:
        with engine.connect() as connection:
            for i in range(8):  # psycopg prepares a query on its 5th run on a connection
                connection.execute(text("SELECT count(*) FROM lead WHERE id > :i"), {"i": i})
            held = connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))
            assert (held.scalar_one() > 0) is prepared
    finally:
        engine.dispose()
