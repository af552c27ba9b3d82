"""Alembic environment: runs against the engine dripengine hands in (see db.alembic_config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

import dripengine.storage.models  # noqa: F401  (registers the tables)
from dripengine.storage.engine import lock_schema

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            # One migration at a time per database: a second `drip db upgrade` (a deploy that
            # starts two) waits here, then finds the schema current instead of creating the same
            # tables again (UniqueViolation). The lock ends with the transaction.
            lock_schema(connection)
            config.attributes["before"] = context.get_context().get_current_revision()
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("dripengine migrations run online only: use `drip db upgrade`")
run_migrations_online()
