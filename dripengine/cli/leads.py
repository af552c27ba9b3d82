"""``drip leads``: import, show, list."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from dripengine.cli.app import App
from dripengine.cli.output import console, emit_object, emit_rows, format_option
from dripengine.cli.progress import count_data_lines, progress_bar
from dripengine.cli.report import print_row_problems
from dripengine.funnel import STAGES, label
from dripengine.leads.importer import import_leads_file
from dripengine.queries import LEAD_COLUMNS, lead_profile, list_leads


@click.group()
def leads() -> None:
    """Leads: import a CSV, show one, list many."""


@leads.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Import nothing if any row is bad.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def leads_import(app: App, csv_file: Path, strict: bool, fmt: str) -> None:
    """Add or update leads from a CSV (header row; an email column; other columns kept).

    Known columns: email, first_name, last_name, company, title, phone, country, timezone,
    source, consent, stage. Every other column becomes an attribute of the lead.
    """
    engine = app.ready_engine()
    with progress_bar("importing", count_data_lines(str(csv_file))) as tick:
        report = import_leads_file(engine, csv_file, now=app.now(), strict=strict, progress=tick)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "rows": report.rows_read,
                    "inserted": report.inserted,
                    "updated": report.updated,
                    "ignored_stage": report.ignored_stage,
                    "errors": [e.__dict__ for e in report.errors],
                    "seconds": round(report.seconds, 3),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        rate = report.rows_read / report.seconds if report.seconds else 0
        click.echo(
            f"{report.rows_read} rows in {report.seconds:.2f}s ({rate:,.0f}/s): "
            f"{report.inserted} new, {report.updated} updated, {len(report.errors)} not taken"
        )
        if report.ignored_stage:
            click.echo(
                f"stage column ignored for {report.ignored_stage} existing lead(s): "
                "stage changes go through `drip recycle`"
            )
        print_row_problems(report.errors, csv_file)
    if strict and report.errors:
        raise click.ClickException(f"--strict: nothing imported, {len(report.errors)} bad row(s)")


@leads.command("show")
@click.argument("email")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def leads_show(app: App, email: str, fmt: str) -> None:
    """Profile, stage history, recycle records and enrollments of one lead."""
    with Session(app.ready_engine()) as session:
        profile = lead_profile(session, email)
    if emit_object(profile, fmt):
        return
    out = console()
    name = " ".join(p for p in (profile["first_name"], profile["last_name"]) if p)
    out.print(f"[bold]{profile['email']}[/bold]  {name}  {profile.get('company') or ''}".rstrip())
    tz = profile.get("timezone")
    facts = {
        "stage": label(profile["stage"]),
        "score": f"{profile['score']:g}",
        "recycled": f"{profile['recycle_count']} time(s)",
        "title": profile.get("title"),
        "country": profile.get("country"),
        "time zone": tz,
        "source": profile.get("source"),
        "attributes": ", ".join(f"{k}={v}" for k, v in profile["attributes"].items()) or None,
    }
    for key, value in facts.items():
        if value:
            out.print(f"  {key:<11} {value}")
    _section(
        out,
        "Stage history",
        profile["stage_history"],
        ["at", "from_stage", "to_stage", "reason", "actor"],
        tz,
    )
    _section(
        out,
        "Recycles",
        profile["recycles"],
        ["at", "from_stage", "reason", "campaign_id", "outcome", "note"],
        tz,
    )
    _section(
        out,
        "Enrollments",
        profile["enrollments"],
        ["campaign_id", "status", "track", "current_step", "next_due_at", "exit_reason"],
        tz,
    )


def _section(
    out: Console, title: str, rows: list[dict[str, Any]], columns: list[str], tz: str | None
) -> None:
    if not rows:
        out.print(f"\n{title}: none")
        return
    zone = ZoneInfo(tz or "UTC")
    table = Table(title=f"{title} (times in {zone.key})", title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, datetime):
                cells.append(f"{value.astimezone(zone):%Y-%m-%d %H:%M}")
            else:
                cells.append("" if value is None else str(value))
        table.add_row(*cells)
    out.print()
    out.print(table)


TABLE_COLUMNS = ("email", "name", "company", "stage", "score", "recycle_count", "updated_at")


@leads.command("list")
@click.option("--stage", type=click.Choice(STAGES), help="Only leads in this stage.")
@click.option("--campaign", help="Only leads active in this campaign (its id).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (newest first).")
@format_option
@click.pass_obj
def leads_list(
    app: App, stage: str | None, campaign: str | None, limit: int | None, fmt: str
) -> None:
    """List leads, newest change first."""
    with Session(app.ready_engine()) as session:
        rows = list_leads(session, stage=stage, campaign=campaign, limit=limit)
    if fmt == "table":
        rows = [
            {**r, "name": " ".join(filter(None, (r["first_name"], r["last_name"])))} for r in rows
        ]
        emit_rows(rows, fmt, TABLE_COLUMNS, empty="no leads match")
    else:
        emit_rows(rows, fmt, LEAD_COLUMNS, empty="no leads match")
