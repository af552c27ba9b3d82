"""``drip db``: the schema."""

from __future__ import annotations

import click

from dripengine.cli.app import App
from dripengine.cli.lazy import LazyGroup
from dripengine.storage.engine import current_revision, head_revision, upgrade


@click.group(cls=LazyGroup)
def db() -> None:
    """Database schema: upgrade and status."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(app: App) -> None:
    """Apply every migration the database lacks (rows are kept)."""
    before = upgrade(app.engine)  # read under the migration lock, after any other upgrade
    after = current_revision(app.engine)
    url = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"{url} is up to date (revision {after})")
    else:
        click.echo(f"{url} upgraded from {before or 'empty'} to {after}")


@db.command("status")
@click.pass_obj
def db_status(app: App) -> None:
    """Show the database's revision and the code's."""
    current = current_revision(app.engine)
    head = head_revision()
    state = "up to date" if current == head else "behind: run `drip db upgrade`"
    click.echo(f"database revision {current or 'none'}, code revision {head} ({state})")
