"""``drip report``: the stats as one self-contained HTML page with charts."""

from __future__ import annotations

import os
from pathlib import Path

import click

from dripengine.cli.app import App
from dripengine.cli.stats import SINCE_HELP, check_campaign, window_of
from dripengine.exceptions import StatsError
from dripengine.reports import html as report


@click.command("report", short_help="Write the stats as one HTML page with charts.")
@click.argument("campaign", required=False)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write (replaced if it exists).",
)
@click.option("--since", metavar="SPAN|DATE", help=SINCE_HELP)
@click.pass_obj
def report_command(app: App, campaign: str | None, out: Path, since: str | None) -> None:
    """Write the stats as one HTML page with charts: the closed loop per campaign, the
    requalification rate by recycle reason, sends, opens and clicks per week, step drop-off, and
    the SLA's breaches by week and by the reason a lead had been recycled for.

    The page is self-contained (Chart.js and the data are inside it): it opens with no network,
    and can be mailed or archived as it is. `drip serve` shows the same page at /report.
    """
    window = window_of(app, since)
    check_campaign(app, campaign)
    page = report.build(app.ready_engine(), window, campaign, since_text=since, sla=app.sla)
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StatsError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {app.relative(out)} ({len(page.encode()) / 1024:,.0f} KB)")
