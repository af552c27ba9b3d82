"""``drip scoring review``: how well score and fit at the hand-back predicted sales' verdicts."""

from __future__ import annotations

import io
import json

import click
from rich.table import Table

from dripengine.cli.app import App
from dripengine.cli.output import SafeDictWriter, console, format_option
from dripengine.exceptions import DripError
from dripengine.reports.since import parse_since
from dripengine.scoring.review import Review, review
from dripengine.scoring.review_queries import load_counts, load_handbacks

CSV_COLUMNS = (
    "section",
    "key",
    "handed",
    "accepted",
    "rejected",
    "won",
    "rate",
    "precision",
    "note",
)


@click.command("review", short_help="How well scores at the hand-back predicted sales' verdicts.")
@click.option(
    "--since",
    default="180d",
    show_default=True,
    help="Feedback given since then (90d, 12w, or an ISO date like 2026-06-01).",
)
@format_option
@click.pass_obj
def review_command(app: App, since: str, fmt: str) -> None:
    """How score and fit at the hand-back related to sales accepting the lead: acceptance rate
    overall, by score band, fit grade, campaign and recycle reason; the score threshold that would
    have kept the most accepted minus rejected hand-backs; the event types and link tags the
    accepted and the rejected ones carried. Sample sizes are stated; no claim below 20 hand-backs
    with feedback (or 5 in a group)."""
    now = app.now()
    try:
        start = parse_since(since, now)
    except ValueError as exc:
        raise DripError(f"--since: {exc}") from None
    with app.ready_engine().connect() as connection:
        counts = load_counts(connection, start)
        handbacks = load_handbacks(connection, start)
    result = review(
        counts,
        handbacks,
        since=start,
        now=now,
        sla_threshold=app.sla.requalification.score,
    )
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(_csv(result), nl=False)
    else:
        _print(result)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _csv(result: Review) -> str:
    buffer = io.StringIO()
    writer = SafeDictWriter(buffer, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in result.groups:
        writer.writerow({**row.__dict__, "section": row.grouping})
    for t in result.sweep:
        writer.writerow(
            {
                "section": "threshold" + (" (best)" if t == result.best else ""),
                "key": f"{t.threshold:g}",
                "handed": t.handed,
                "accepted": t.accepted,
                "rejected": t.rejected,
                "precision": round(t.precision, 4),
            }
        )
    for s in result.signals:
        writer.writerow(
            {
                "section": s.kind,
                "key": s.name,
                "handed": s.accepted_with + s.rejected_with,
                "accepted": s.accepted_with,
                "rejected": s.rejected_with,
                "rate": s.rate,
                "note": s.note,
            }
        )
    return buffer.getvalue()


def _print(result: Review) -> None:
    out = console()
    click.echo(
        f"Scoring review: {result.total} hand-back(s) with feedback since "
        f"{result.since:%Y-%m-%d} (accepted = accepted, won or lost; rates from "
        f"{result.min_group} a group, claims from {result.min_total} in all)"
    )
    if result.total:
        table = Table(show_lines=False)
        for column, justify in (
            ("by", "left"),
            ("group", "left"),
            ("handed back", "right"),
            ("accepted", "right"),
            ("rejected", "right"),
            ("won", "right"),
            ("acceptance", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        previous = None
        for row in result.groups:
            table.add_row(
                row.grouping if row.grouping != previous else "",
                row.key,
                str(row.handed),
                str(row.accepted),
                str(row.rejected),
                str(row.won),
                row.note or _pct(row.rate),
            )
            previous = row.grouping
        out.print(table)
    if result.sweep:
        table = Table(title="If only scores at or above the threshold had been handed back")
        for column in ("threshold", "handed back", "accepted", "rejected", "precision", ""):
            table.add_column(column, justify="right" if column else "left")
        for t in result.sweep:
            mark = "best (most accepted - rejected)" if t == result.best else ""
            if t == result.sweep[0]:
                mark = (mark + "; " if mark else "") + "as handed back"
            table.add_row(
                f"{t.threshold:g}",
                str(t.handed),
                str(t.accepted),
                str(t.rejected),
                _pct(t.precision),
                mark,
            )
        out.print(table)
    if result.signals:
        table = Table(title="What the evidence of the hand-backs held")
        for column, justify in (
            ("kind", "left"),
            ("name", "left"),
            ("in accepted", "right"),
            ("in rejected", "right"),
            ("acceptance when present", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for s in result.signals:
            table.add_row(
                s.kind,
                s.name,
                f"{s.accepted_with} ({_pct(s.share_of_accepted)})",
                f"{s.rejected_with} ({_pct(s.share_of_rejected)})",
                s.note or _pct(s.rate),
            )
        out.print(table)
    for line in result.advice():
        click.echo(line)


__all__ = ["review_command"]
