"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

PostgreSQL tests read the server URL from ``DRIP_TEST_POSTGRES_URL`` (``.ci/run`` sets it, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); without it they are skipped with that
reason. Each test gets its own database cloned from a migrated template (``CREATE DATABASE …
TEMPLATE …``), so tests never see each other's rows and migrations run once per session.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from dripengine.clock import FixedClock
from dripengine.storage.engine import make_engine, upgrade

# Property tests assert behaviour, not speed: no per-example deadline (a loaded 2-core CI machine
# made a 200 ms deadline fail a correct example now and then).
hypothesis_settings.register_profile("dripengine", deadline=None)
hypothesis_settings.load_profile("dripengine")

PG_ENV = "DRIP_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parent.parent


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str | None]:
    admin_url = _pg_admin_url()
    if admin_url is None:
        yield None
        return
    name = f"drip_tpl_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _sqlite_template: Path,
    _pg_template: str | None,
) -> Iterator[str]:
    """The URL of a fresh, migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "drip.db"
        shutil.copyfile(_sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    admin_url = _pg_admin_url()
    if admin_url is None or _pg_template is None:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)"
        )
    with cloned_database(admin_url, _pg_template, "drip_t") as url:
        yield url


@contextmanager
def cloned_database(admin_url: str, template: str | None, prefix: str) -> Iterator[str]:
    """A new PostgreSQL database cloned from the migrated ``template`` (``None``: empty),
    dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    clone = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{clone}'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    """A folder made by `drip init` and made the current one, on the parametrised backend."""
    from click.testing import CliRunner

    from dripengine.cli import main
    from dripengine.templates.compile import CACHE

    monkeypatch.delenv("DRIP_CONFIG", raising=False)
    monkeypatch.delenv("DRIP_PROVIDER", raising=False)
    target = tmp_path / "acme-drip"
    if not db_url.startswith("sqlite"):
        monkeypatch.setenv("DRIP_DATABASE_URL", db_url)
    result = CliRunner().invoke(main, ["init", str(target)])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(target)
    CACHE.data.clear()
    return target


@pytest.fixture
def folder_engine(folder: Path, db_url: str) -> Iterator[Engine]:
    """The engine of the `drip init` folder's database (SQLite in the folder, or PostgreSQL)."""
    url = f"sqlite:///{folder / 'drip.db'}" if db_url.startswith("sqlite") else db_url
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    """Monday 23 November 2026, 10:00 UTC."""
    return FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
