"""Two `drip db upgrade` at once on an empty database: one migrates, the other waits and finds the
schema current (issue 12, finding 12). Real processes, real PostgreSQL and SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dripengine.storage.engine import current_revision, head_revision, make_engine
from tests.conftest import PG_ENV, _pg_admin_url, cloned_database

pytestmark = pytest.mark.slow  # `drip` subprocesses racing to migrate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'drip.db'}"
        return
    admin_url = _pg_admin_url()
    if admin_url is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    with cloned_database(admin_url, None, "drip_e") as url:
        yield url


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    env["DRIP_DATABASE_URL"] = url
    return env


def upgrade_twice_at_once(url: str, folder: Path) -> list[subprocess.CompletedProcess[str]]:
    env = _env(url)
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "dripengine", "db", "upgrade"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    done = []
    for process in started:
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


@pytest.mark.parametrize("attempt", range(3))  # a race: a few fresh databases, not one
def test_two_upgrades_at_once_one_migrates_the_other_finds_it_current(
    empty_url: str, tmp_path: Path, attempt: int
) -> None:
    results = upgrade_twice_at_once(empty_url, tmp_path)
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert all(r.stderr == "" for r in results)  # no traceback, no UniqueViolation
    said = sorted(r.stdout.split(" ", 1)[1].strip() for r in results)
    head = head_revision()
    assert said == [f"is up to date (revision {head})", f"upgraded from empty to {head}"]
    engine = make_engine(empty_url)
    try:
        assert current_revision(engine) == head
    finally:
        engine.dispose()
    status = subprocess.run(
        [sys.executable, "-m", "dripengine", "db", "status"],
        cwd=tmp_path,
        env=_env(empty_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout == f"database revision {head}, code revision {head} (up to date)\n"
