"""``drip leads``: import, show, list, forget."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.lazy import LazyGroup
from dripengine.cli.output import console, emit_object, emit_rows, format_option, shown
from dripengine.cli.problems import print_row_problems
from dripengine.cli.progress import count_data_lines, progress_bar
from dripengine.exceptions import DripError
from dripengine.leads.importer import import_leads_file
from dripengine.leads.optout import forget
from dripengine.reports.leads import SCORE_CHANGES_SHOWN, lead_profile
from dripengine.reports.since import parse_since
from dripengine.stages import STAGES, label
from dripengine.storage import Engine
from dripengine.storage.queries import (
    LEAD_COLUMNS,
    REQUALIFIED_COLUMNS,
    list_leads,
    requalified,
)
from dripengine.storage.stats import known_campaigns
from dripengine.suggest import did_you_mean

TABLE_LIMIT = 50  # rows a `leads list` table shows unless --limit / --all


@click.group(cls=LazyGroup)
def leads() -> None:
    """Leads: import a CSV, show one, list many, forget one."""


@leads.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Import nothing if any row is bad.")
@format_option
@click.pass_obj
def leads_import(app: App, csv_file: Path, strict: bool, fmt: str) -> None:
    """Add or update leads from a CSV (header row; an email column; other columns kept).

    Known columns: email, first_name, last_name, company, title, phone, country, timezone,
    source, consent, stage. Every other column becomes an attribute of the lead.
    """
    engine = app.ready_engine()
    with progress_bar("importing", count_data_lines(str(csv_file))) as tick:
        report = import_leads_file(engine, csv_file, now=app.now(), strict=strict, progress=tick)
    errors = [dict(e.__dict__) for e in report.errors]
    summary = {
        "rows": report.rows_read,
        "inserted": report.inserted,
        "updated": report.updated,
        "ignored_stage": report.ignored_stage,
        "errors": errors,
        "seconds": round(report.seconds, 3),
    }
    # csv: the rows not taken, one a line (the counts are in text and json)
    problems = (list(errors[0]) if errors else ["line", "email", "message"], errors)
    if not emit_object(summary, fmt, rows=problems):
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


@leads.command(
    "show", short_help="One lead: profile, score, stage history, recycles, enrollments, touches."
)
@click.argument("email")
@format_option
@click.pass_obj
def leads_show(app: App, email: str, fmt: str) -> None:
    """Profile, score now, fit grade, suppression, stage history, recycles, enrollments, sales
    touches (a rep's calls, emails, meetings) and the latest score changes with their reasons
    (`drip scoring explain` shows all of them)."""
    profile = lead_profile(app.ready_engine(), email, app.settings, app.now())
    if emit_object(profile, fmt):
        return
    out = console()
    name = " ".join(p for p in (profile["first_name"], profile["last_name"]) if p)
    out.print(
        f"[bold]{shown(profile['email'])}[/bold]  {shown(name)}  "
        f"{shown(profile.get('company'))}".rstrip()
    )
    tz = profile.get("timezone")
    suppressed = profile["suppressed"]
    facts = {
        "stage": label(profile["stage"]),
        "score": f"{profile['score_now']:g} now (decays by half every "
        f"{app.settings.scoring.half_life_days:g} days)",
        "fit": f"{profile['fit_grade']} ({profile['fit_points']:g} points"
        + (f"; missing: {', '.join(profile['fit_missing'])})" if profile["fit_missing"] else ")"),
        "suppressed": f"{suppressed['reason']} since {suppressed['since']:%Y-%m-%d}"
        if suppressed
        else None,
        "recycled": f"{profile['recycle_count']} time(s)",
        "title": profile.get("title"),
        "country": profile.get("country"),
        "time zone": tz,
        "source": profile.get("source"),
        "attributes": ", ".join(f"{k}={v}" for k, v in profile["attributes"].items()) or None,
    }
    held = [e["campaign_id"] for e in profile["enrollments"] if e.get("holdout")]
    if held:  # docs/holdout.md
        facts["holdout"] = f"in the holdout group of {', '.join(held)}: enrolled, sent nothing"
    for key, value in facts.items():
        if value:
            out.print(f"  {key:<11} {shown(value)}")
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
        [{**e, "group": "holdout" if e.get("holdout") else ""} for e in profile["enrollments"]],
        ["campaign_id", "status", "group", "track", "current_step", "next_due_at", "exit_reason"],
        tz,
    )
    _section(
        out,
        "Sales touches (newest first)",
        [{**t, "note": _short(t["note"])} for t in profile["sales_touches"]],
        ["at", "kind", "actor", "source", "note"],
        tz,
    )
    _section(
        out,
        f"Score changes (the latest {SCORE_CHANGES_SHOWN}, newest first)",
        profile["score_changes"],
        ["at", "event_type", "delta", "score_after", "reason"],
        tz,
    )


def _short(note: str | None, limit: int = 80) -> str | None:
    """A note on one line of a table (the whole note is in --format json)."""
    one_line = " ".join(note.split()) if note else None
    return one_line[:limit] + "…" if one_line and len(one_line) > limit else one_line


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
            elif isinstance(value, float):
                cells.append(f"{value:+g}" if column == "delta" else f"{value:g}")
            else:
                cells.append("" if value is None else str(value))
        table.add_row(*(shown(cell) for cell in cells))  # "click [pricing]" is no markup
    out.print()
    out.print(table)


TABLE_COLUMNS = ("email", "name", "company", "stage", "score", "recycle_count", "updated_at")


REQUALIFIED_TABLE = (  # short headings: ten columns in a terminal's width
    "email",
    "name",
    "company",
    "requalified",
    "score",
    "fit",
    "campaign",
    "reason",
    "days",
    "handoff",
)


class SinceError(DripError):
    """That is not a time to list from."""


@leads.command("list")
@click.option("--stage", type=Choice(STAGES), help="Only leads in this stage.")
@click.option("--campaign", help="Only leads active in this campaign (its id).")
@click.option(
    "--requalified",
    "requalified_only",
    is_flag=True,
    help="The hand-back list for sales: leads requalified, with the score and fit grade at the "
    "handoff, the campaign, the recycle reason, days in nurture and the CRM handoff's status.",
)
@click.option(
    "--since",
    metavar="SPAN|DATE",
    help="With --requalified: only since then (7d, 12h, 2w, or an ISO date like 2026-11-01).",
)
@click.option(
    "--search",
    metavar="TEXT",
    help="Only leads whose address, name or company contains this (any case).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help=f"At most this many, newest change first (table: {TABLE_LIMIT} unless --all).",
)
@click.option("--all", "show_all", is_flag=True, help="Every lead that matches, however many.")
@format_option
@click.pass_obj
def leads_list(
    app: App,
    stage: str | None,
    campaign: str | None,
    requalified_only: bool,
    since: str | None,
    search: str | None,
    limit: int | None,
    show_all: bool,
    fmt: str,
) -> None:
    """List leads, newest change first; `--requalified` lists the ones handed back to sales.

    A table shows the newest 50 and says how many match (--limit N, --all); --format json and csv
    give every match unless --limit says otherwise.
    """
    if since is not None and not requalified_only:
        raise click.UsageError("--since goes with --requalified")
    if show_all and limit:
        raise click.UsageError("give --limit or --all, not both")
    if requalified_only:
        if stage or campaign or search:
            raise click.UsageError(
                "--requalified lists handoffs: leave out --stage, --campaign and --search"
            )
        _requalified(app, since, limit, fmt)
        return
    engine = app.ready_engine()
    if campaign:
        _known_campaign(app, engine, campaign)
    if limit is None and fmt == "text" and not show_all:
        limit = TABLE_LIMIT
    rows, total = list_leads(engine, stage=stage, campaign=campaign, search=search, limit=limit)
    if fmt != "text":
        emit_rows(rows, fmt, LEAD_COLUMNS, empty="no leads match")
        return
    rows = [{**r, "name": " ".join(filter(None, (r["first_name"], r["last_name"])))} for r in rows]
    emit_rows(rows, fmt, TABLE_COLUMNS, empty="no leads match")
    if len(rows) < total:
        click.echo(
            f"showing {len(rows):,} of {total:,} (use --limit N or --all; --search to narrow)"
        )


def _known_campaign(app: App, engine: Engine, campaign: str) -> None:
    """Refuse a campaign id no file and no enrollment has, with the nearest one."""
    with engine.connect() as connection:
        known = set(known_campaigns(connection))
    with contextlib.suppress(DripError):
        known |= {c.id for c in app.campaigns}
    if campaign not in known:
        raise click.BadParameter(
            f'no campaign "{campaign}"{did_you_mean(campaign, known)} '
            f"(known: {', '.join(sorted(known)) or 'none'})",
            param_hint="'--campaign'",
        )


def _requalified(app: App, since: str | None, limit: int | None, fmt: str) -> None:
    start = None
    if since is not None:
        try:
            start = parse_since(since, app.now())
        except ValueError as exc:
            raise SinceError(f"--since: {exc}") from None
    rows = requalified(app.ready_engine(), since=start, limit=limit)
    if fmt == "text":
        rows = [
            {
                "email": r["email"],
                "name": " ".join(filter(None, (r["first_name"], r["last_name"]))),
                "company": r["company"],
                "requalified": f"{r['requalified_at']:%Y-%m-%d}",
                "score": r["score"],
                "fit": r["fit_grade"],
                "campaign": r["campaign_id"],
                "reason": r["recycle_reason"],
                "days": r["days_in_nurture"],
                "handoff": r["handoff_status"],
            }
            for r in rows
        ]
        emit_rows(
            rows,
            fmt,
            REQUALIFIED_TABLE,
            empty="no lead requalified" + (f" since {since}" if since else ""),
        )
    else:
        emit_rows(rows, fmt, REQUALIFIED_COLUMNS, empty="")


@leads.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def leads_forget(app: App, email: str, yes: bool) -> None:
    """Erase a person (the GDPR right to erasure): personal data gone, never mailed again.

    The lead's address becomes erased-ID@erased.invalid; names, company, title, phone,
    country, time zone, source and attributes are emptied; its events' raw payloads, its emails' subjects, its recycle and
    feedback notes are blanked; the address is replaced wherever else it was stored (click URLs,
    errors, score reasons, events that matched no lead); the outbox .eml files of its emails are
    removed and, on SQLite, the write-ahead log is emptied into the zero-filled file. Its
    enrollments exit, scoring stops and a pending CRM handoff is cancelled. Only a SHA-256 hash of
    the address is kept, as a suppression, so an import or a recycle of the same address is
    refused. The stage and its history stay, for the statistics.
    """
    if not yes:
        click.confirm(f"Erase {email} for good? This cannot be undone", abort=True)
    done = forget(app.ready_engine(), email, app.now(), outbox=app.settings.outbox_dir)
    if done.lead_id is None:
        click.echo(
            f"no lead {done.email}; its hash is suppressed, so it is never imported or mailed"
            + (f"; {done.scrubbed} unmatched event(s) scrubbed" if done.scrubbed else "")
        )
    else:
        click.echo(
            f"{done.email} erased (now {done.erased_as}): {done.exited} enrollment(s) exited, "
            f"{done.events} event(s) blanked, {done.scrubbed} other row(s) scrubbed of the "
            f"address, {done.files} outbox file(s) removed; only its hash is kept, as a "
            "suppression"
        )
    if done.checkpointed is False:
        click.echo(
            "warning: a running drip serve or drip run kept SQLite's write-ahead log from being "
            "emptied; the old values stay in drip.db-wal until the next checkpoint (run "
            "`drip leads forget` again once they are stopped)",
            err=True,
        )
