"""``drip recycle``: one lead, or a CSV of lost deals."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from dripengine.bulk import recycle_file
from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.output import terminal_safe
from dripengine.cli.progress import count_data_lines, progress_bar
from dripengine.cli.report import print_row_problems
from dripengine.db import session_scope
from dripengine.funnel import RECYCLABLE
from dripengine.recycling import RecycleContext, RecycleRequest
from dripengine.recycling import recycle as recycle_one


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
@click.option("--strict", is_flag=True, help="With --csv: recycle nothing if any row is refused.")
@click.option("--format", "fmt", type=Choice(["text", "json"]), default="text")
@click.pass_obj
def recycle(
    app: App,
    email: str | None,
    from_stage: str | None,
    reason: str | None,
    note: str | None,
    actor: str | None,
    csv_path: Path | None,
    strict: bool,
    fmt: str,
) -> None:
    """Take back a lead sales gave back and enroll it in the campaign that fits.

    \b
    drip recycle jane@acme.example --from sql --reason no_budget --note "revisit in Q3"
    drip recycle --csv lost-deals.csv
    """
    actor = actor or _user()
    engine = app.ready_engine()
    ctx = RecycleContext(
        campaigns=app.campaigns,
        sla=app.sla,
        now=app.now(),
        reset_score=app.settings.scoring.reset_on_recycle,
    )
    if csv_path is not None:
        if email or reason:
            raise click.UsageError("give either EMAIL with --reason, or --csv FILE")
        with progress_bar("recycling", count_data_lines(str(csv_path))) as tick:
            report = recycle_file(engine, csv_path, ctx, actor=actor, strict=strict, progress=tick)
        if fmt == "json":
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
                for result in report.results:
                    click.echo(terminal_safe(result.describe()))  # it may quote lead data
                click.echo(
                    f"{report.rows_read} rows in {report.seconds:.1f}s: {counts}; "
                    f"{len(report.errors)} refused"
                )
            else:  # --strict with a refused row: everything was rolled back
                for result in report.results:
                    click.echo(f"{terminal_safe(result.email)}: not recycled (rolled back)")
                click.echo(
                    f"{report.rows_read} rows in {report.seconds:.1f}s: nothing recycled, "
                    f"{len(report.errors)} refused (without them: {counts})"
                )
            print_row_problems(report.errors, csv_path)
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
    with session_scope(engine) as session:
        outcome = recycle_one(session, request, ctx)
    if fmt == "json":
        click.echo(json.dumps(outcome.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(terminal_safe(outcome.describe()))  # it may quote lead data


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
