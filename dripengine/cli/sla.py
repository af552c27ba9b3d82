"""``drip sla``: the agreement, as a document."""

from __future__ import annotations

import click

from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.output import emit_object
from dripengine.sla import render_markdown


@click.command()
@click.option("--format", "fmt", type=Choice(["markdown", "json"]), default="markdown")
@click.pass_obj
def sla(app: App, fmt: str) -> None:
    """Print the agreed MQL/SQL definitions, recycle reasons and requalification rule."""
    if not emit_object(app.sla.model_dump(mode="json"), fmt):
        click.echo(render_markdown(app.sla), nl=False)
