"""``drip recycle``: one lead, or a CSV of lost deals."""

from __future__ import annotations

import getpass
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from dripengine.cli.choice import Choice
from dripengine.cli.output import SafeDictWriter, emit_object, format_option, terminal_safe
from dripengine.funnel.recycle import recycle as recycle_one
from dripengine.funnel.recycle_request import RecycleContext, RecycleRequest
from dripengine.stages import RECYCLABLE

if TYPE_CHECKING:  # --csv's machinery (CSV reading, the progress bar) is imported with --csv only
    from dripengine.cli.app import App
    from dripengine.funnel.recycle_csv import BulkReport


@click.command()
@click.argument("email", required=False)
@click.option(
    "--from",
    "from_stage",
    type=Choice(RECYCLABLE, case_sensitive=False),
    help="The stage sales had the lead in (default: the stage dripengine has).",
)
@click.option("--reason", help="Reason code from sla.yaml (`drip sla` lists them).")
@click.option("--note", help="Free text from sales, kept with the recycle record.")
@click.option("--actor", help="Who recycles (default: your user name).")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Recycle every row of a CSV (columns: email, reason, from_stage, note, lead fields).",
)
@click.option(
    "--create",
    is_flag=True,
    help="Add an address no lead has as a new lead (without it, an unknown address is refused "
    "with the nearest known ones: a typo never enrolls a ghost lead).",
)
@click.option("--strict", is_flag=True, help="With --csv: recycle nothing if any row is refused.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="With --csv: a line per recycled row, not only the summary.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="With --csv: write every row's outcome (or why it was refused) to this CSV file.",
)
@format_option
@click.pass_obj
def recycle(
    app: App,
    email: str | None,
    from_stage: str | None,
    reason: str | None,
    note: str | None,
    actor: str | None,
    csv_path: Path | None,
    create: bool,
    strict: bool,
    verbose: bool,
    report_path: Path | None,
    fmt: str,
) -> None:
    """Take back a lead sales gave back and enroll it in the campaign that fits.

    \b
    drip recycle jane@acme.example --from sql --reason no_budget --note "revisit in Q3"
    drip recycle --csv lost-deals.csv [--verbose] [--report outcomes.csv]
    drip recycle new.lead@acme.example --reason no_budget --create
    """
    actor = actor or _user()
    engine = app.ready_engine()
    ctx = RecycleContext(
        campaigns=app.campaigns,
        sla=app.sla,
        now=app.now(),
        reset_score=app.settings.scoring.reset_on_recycle,
        create_leads=create,
    )
    if csv_path is None and (verbose or report_path):
        raise click.UsageError("--verbose and --report go with --csv FILE")
    if csv_path is not None:
        if email or reason:
            raise click.UsageError("give either EMAIL with --reason, or --csv FILE")
        from dripengine.cli.problems import print_row_problems
        from dripengine.cli.progress import count_data_lines, progress_bar
        from dripengine.funnel.recycle_csv import recycle_file

        with progress_bar("recycling", count_data_lines(str(csv_path))) as tick:
            report = recycle_file(engine, csv_path, ctx, actor=actor, strict=strict, progress=tick)
        if fmt == "csv":  # every row's outcome, as --report writes it
            click.echo(report_csv(report), nl=False)
        elif fmt == "json":
            click.echo(
                json.dumps(
                    {
                        "rows": report.rows_read,
                        # what happened: a --strict run that was rolled back recycled nothing
                        "outcomes": dict(report.outcomes) if report.committed else {},
                        "rolled_back": {} if report.committed else dict(report.outcomes),
                        "results": [r.as_dict() for r in report.results]
                        if report.committed
                        else [],
                        "errors": [e.__dict__ for e in report.errors],
                        "committed": report.committed,
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
        else:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(report.outcomes.items())) or "none"
            if report.committed:
                if verbose:
                    for result in report.results:
                        click.echo(terminal_safe(result.describe()))  # it may quote lead data
                click.echo(
                    f"{report.rows_read} rows in {report.seconds:.1f}s: {counts}; "
                    f"{len(report.errors)} refused"
                )
            else:  # --strict with a refused row: everything was rolled back
                if verbose:
                    for result in report.results:
                        click.echo(f"{terminal_safe(result.email)}: not recycled (rolled back)")
                click.echo(
                    f"{report.rows_read} rows in {report.seconds:.1f}s: nothing recycled, "
                    f"{len(report.errors)} refused (without them: {counts})"
                )
            print_row_problems(report.errors, csv_path, more_hint="--report FILE")
            unknown = sum(1 for e in report.errors if e.message.startswith("no lead "))
            if unknown and not create:
                click.echo(
                    f"{unknown} row(s) name an address no lead has: fix the typos, or add "
                    "--create to add them as new leads",
                    err=True,
                )
        if report_path is not None:
            written = write_report(report_path, report)
            if fmt == "text":
                click.echo(f"{written} rows written to {report_path}")
        if report.errors and strict:
            raise click.ClickException(
                f"--strict: nothing recycled, {len(report.errors)} row(s) refused"
            )
        return
    if not email:
        raise click.UsageError("give the lead's EMAIL (or --csv FILE)")
    if not reason:
        raise click.UsageError(
            f"--reason is required (one of: {', '.join(app.sla.recycle_reasons)})"
        )
    request = RecycleRequest(
        email=email, reason=reason, from_stage=from_stage, note=note, actor=actor
    )
    outcome = recycle_one(engine, request, ctx)
    if not emit_object(outcome.as_dict(), fmt):  # csv: the outcome as one row
        click.echo(terminal_safe(outcome.describe()))  # it may quote lead data


REPORT_COLUMNS = (
    "line",
    "email",
    "outcome",
    "campaign",
    "track",
    "step",
    "next_due_at",
    "created",
    "detail",
)


def write_report(path: Path, report: BulkReport) -> int:
    """Every row's outcome, in file order, as CSV: what happened, or why it was refused."""
    rows = report_rows(report)
    with path.open("w", newline="", encoding="utf-8") as out:
        _write_rows(out, rows)
    return len(rows)


def report_csv(report: BulkReport) -> str:
    buffer = io.StringIO()
    _write_rows(buffer, report_rows(report))
    return buffer.getvalue()


def _write_rows(out: TextIO, rows: list[dict[str, object]]) -> None:
    writer = SafeDictWriter(out, fieldnames=list(REPORT_COLUMNS), restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)


def report_rows(report: BulkReport) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for line, result in zip(report.result_lines, report.results, strict=True):
        rows.append(
            {
                "line": line,
                "email": result.email,
                "outcome": result.outcome if report.committed else "rolled back",
                "campaign": result.campaign_id or "",
                "track": result.track or "",
                "step": result.step_id or "",
                "next_due_at": result.due_at.isoformat() if result.due_at else "",
                "created": "yes" if result.created else "no",
                "detail": result.detail,
            }
        )
    for problem in report.errors:
        rows.append(
            {
                "line": problem.line,
                "email": problem.email,
                "outcome": "refused",
                "detail": problem.message,
            }
        )
    rows.sort(key=lambda row: int(str(row["line"])))
    return rows


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
