"""``drip touches``: record reps' calls, emails and meetings with leads (a CSV, or one by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.lazy import LazyGroup
from dripengine.cli.output import emit_object, format_option, terminal_safe
from dripengine.cli.problems import print_row_problems
from dripengine.leads.touches import (
    KINDS,
    TouchError,
    TouchReport,
    parse_all,
    read_touch_file,
    record_touches,
)


@click.group(cls=LazyGroup)
def touches() -> None:
    """Sales touches: a rep's call, email or meeting holds marketing email to the lead."""


@touches.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Record nothing if any row is refused.")
@format_option
@click.pass_obj
def touches_import(app: App, csv_file: Path, strict: bool, fmt: str) -> None:
    """Record the touches of a CSV: columns email, kind (call, email, meeting), at (ISO 8601
    with its offset; empty: now), rep (or actor), note.

    The same touch (lead, kind, time) already recorded is counted as a duplicate, not stored
    again. A row naming an address no lead has is refused with the nearest known ones.
    """
    now = app.now()
    engine = app.ready_engine()
    report = record_touches(
        engine, read_touch_file(csv_file, now), now, source="csv", strict=strict
    )
    results = [{"line": r.where, **r.as_dict()} for r in report.results]
    summary = {"rows": len(report.results), **_kept(report), "committed": report.committed}
    refused = [r for r in results if r["outcome"] == "refused"]
    columns = ["line", "email", "kind", "at", "outcome", "message"]
    if not emit_object({**summary, "results": results}, fmt, rows=(columns, refused)):
        click.echo(_summary_line(report))
        print_row_problems(report.refused, csv_file)
    if strict and report.refused:
        raise click.ClickException(
            f"--strict: nothing recorded, {len(report.refused)} row(s) refused"
        )


@touches.command("add")
@click.argument("email")
@click.option("--kind", type=Choice(KINDS), required=True, help="call, email or meeting.")
@click.option("--at", help="When it happened, ISO 8601 with its offset (default: now).")
@click.option("--rep", help="The rep who made the touch.")
@click.option("--note", help="Free text, kept with the touch.")
@format_option
@click.pass_obj
def touches_add(
    app: App, email: str, kind: str, at: str | None, rep: str | None, note: str | None, fmt: str
) -> None:
    """Record one touch: drip touches add jane@acme.example --kind call --rep sam."""
    now = app.now()
    values = {"email": email, "kind": kind, "at": at, "rep": rep, "note": note}
    report = record_touches(app.ready_engine(), parse_all([(1, values)], now), now, source="cli")
    result = report.results[0]
    if result.outcome == "refused":
        raise TouchError(result.message)
    if not emit_object(result.as_dict(), fmt):
        held = app.settings.sending.quiet_after_sales_touch
        hold = (
            f"; marketing email held until {result.at + held:%Y-%m-%d %H:%M} UTC"
            if (held and result.at)
            else ""
        )
        click.echo(
            terminal_safe(f"{result.email}: {result.kind} at {result.at:%Y-%m-%d %H:%M} UTC ")
            + (f"recorded{hold}" if result.outcome == "stored" else "already recorded")
        )


def _kept(report: TouchReport) -> dict[str, Any]:
    """What the import did: nothing stored when --strict rolled it back."""
    counts = report.counts()
    if not report.committed:
        return {**counts, "stored": 0, "rolled_back": counts["stored"]}
    return counts


def _summary_line(report: TouchReport) -> str:
    counts = report.counts()
    rows = len(report.results)
    if not report.committed:
        return (
            f"{rows} rows: nothing recorded, {counts['refused']} refused "
            f"(without them: {counts['stored']} new, {counts['duplicates']} duplicates)"
        )
    return (
        f"{rows} rows in {report.seconds:.2f}s: {counts['stored']} recorded, "
        f"{counts['duplicates']} duplicates (already recorded), {counts['refused']} refused"
    )
