"""Migrations keep every row, and the shipped revisions match the models."""

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import dripengine.storage.models  # noqa: F401
from dripengine.storage.engine import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)

AT = datetime(2026, 11, 1, 9, tzinfo=UTC)


def test_head_matches_models(engine) -> None:  # type: ignore[no-untyped-def]
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), SQLModel.metadata
        )
    assert diff == []


def test_upgrade_from_previous_revision_keeps_rows(engine) -> None:  # type: ignore[no-untyped-def]
    downgrade(engine, "0001")
    assert "message" not in inspect(engine).get_table_names()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO lead (email, first_name, attributes, stage, score, recycle_count, created_at, updated_at)"
                " VALUES (:e, :f, :a, 'recycled', 12.5, 1, :t, :t)"
            ),
            [
                {
                    "e": f"user{i}@acme.example",
                    "f": f"Ü{i}",
                    "a": '{"industry": "saas"}',
                    "t": AT.replace(tzinfo=None) if engine.dialect.name == "sqlite" else AT,
                }
                for i in range(50)
            ],
        )
        lead_id = connection.execute(
            text("SELECT id FROM lead WHERE email = 'user7@acme.example'")
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO enrollment (lead_id, campaign_id, campaign_version, status, track, current_step,"
                " step_index, round, enrolled_at, updated_at) VALUES (:l, 'c', 1, 'active', 'cold', 's1', 0, 1, :t, :t)"
            ),
            {"l": lead_id, "t": AT.replace(tzinfo=None) if engine.dialect.name == "sqlite" else AT},
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT email, first_name, score FROM lead ORDER BY id")
        ).all()
        assert len(rows) == 50
        assert rows[7] == ("user7@acme.example", "Ü7", 12.5)
        assert connection.execute(text("SELECT current_step FROM enrollment")).scalar_one() == "s1"
        assert "message" in inspect(connection).get_table_names()


def test_sqlite_connection_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10_000


def test_the_head_revision_the_code_checks_against_is_alembics() -> None:
    from dripengine.storage.engine import scripts_head

    assert head_revision() == scripts_head(), "update HEAD_REVISION in dripengine/storage/engine.py"


def test_current_revision_of_a_database_without_the_version_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert current_revision(engine) is None
    engine.dispose()
