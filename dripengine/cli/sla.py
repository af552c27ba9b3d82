"""``drip sla``: the agreement, as a document; ``drip sla breaches``: where it is not kept."""

from __future__ import annotations

import click

from dripengine.cli.app import App
from dripengine.cli.lazy import LazyGroup
from dripengine.cli.output import emit_object, emit_rows, format_option

BREACH_COLUMNS = (
    "email",
    "owner",
    "clock",
    "handed_back_at",
    "due_at",
    "overdue_hours",
    "reason",
    "stopped_at",
    "stopped_by",
    "handoff_id",
)


@click.group(cls=LazyGroup, invoke_without_command=True)
@format_option
@click.pass_context
def sla(ctx: click.Context, fmt: str) -> None:
    """Print the agreed MQL/SQL definitions, recycle reasons and requalification rule.

    The text is Markdown, ready for a wiki; --format csv gives the recycle reasons, one a row.
    `drip sla breaches` lists the hand-backs whose first touch or decision is overdue.
    """
    if ctx.invoked_subcommand is not None:
        return
    from dripengine.funnel.sla import render_markdown

    app: App = ctx.obj
    document = app.sla.model_dump(mode="json")
    reasons = [{"reason": code, **values} for code, values in document["recycle_reasons"].items()]
    columns = list(reasons[0]) if reasons else ["reason"]
    if not emit_object(document, fmt, rows=(columns, reasons)):
        click.echo(render_markdown(app.sla), nl=False)


@sla.command()
@click.option(
    "--all",
    "resolved",
    is_flag=True,
    help="Also the clocks sales stopped, but late (with stopped_at and stopped_by).",
)
@format_option
@click.pass_obj
def breaches(app: App, resolved: bool, fmt: str) -> None:
    """Handed-back leads whose first touch or decision is overdue, most overdue first.

    One row a clock: the lead, the rep the CRM named (owner), when it was handed back, which clock
    (first_touch or decision), when it was due and how many working hours it is overdue. Times
    are in the SLA's time zone here, ISO UTC in --format json and csv. `drip --now TIME sla
    breaches` asks as of another time.
    """
    from dripengine.funnel.sla_watch import list_breaches

    commitments = app.sla.sales_commitments
    if commitments.first_touch_hours is None and commitments.decision_days is None:
        raise click.ClickException(
            f"{app.settings.path('sla')} sets neither sales_commitments.first_touch_hours nor "
            "decision_days: no clock runs"
        )
    found = list_breaches(app.ready_engine(), app.sla, app.now(), resolved=resolved)
    rows = [breach.as_dict() for breach in found]
    if fmt != "text":
        emit_rows(rows, fmt, BREACH_COLUMNS)
        return
    zone = app.sla.clock.zone
    for row in rows:
        for name in ("handed_back_at", "due_at", "stopped_at"):
            if row[name] is not None:
                row[name] = row[name].astimezone(zone)
    shown = BREACH_COLUMNS if resolved else BREACH_COLUMNS[:7]
    emit_rows(
        rows,
        "text",
        shown,
        title=f"SLA breaches at {app.now().astimezone(zone):%Y-%m-%d %H:%M} ({zone.key}); "
        "overdue in working hours",
        empty="no SLA breach: every hand-back was touched and decided in time"
        if resolved
        else "no SLA breach open: no hand-back is waiting past its first touch or decision",
    )
