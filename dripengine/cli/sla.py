"""``drip sla``: the agreement, as a document."""

from __future__ import annotations

import click

from dripengine.cli.app import App
from dripengine.cli.output import emit_object, format_option
from dripengine.funnel.sla import render_markdown


@click.command()
@format_option
@click.pass_obj
def sla(app: App, fmt: str) -> None:
    """Print the agreed MQL/SQL definitions, recycle reasons and requalification rule.

    The text is Markdown, ready for a wiki; --format csv gives the recycle reasons, one a row.
    """
    sla = app.sla.model_dump(mode="json")
    reasons = [{"reason": code, **values} for code, values in sla["recycle_reasons"].items()]
    columns = list(reasons[0]) if reasons else ["reason"]
    if not emit_object(sla, fmt, rows=(columns, reasons)):
        click.echo(render_markdown(app.sla), nl=False)
