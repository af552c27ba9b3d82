"""``drip run``: send what is due."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from dripengine.cli.app import App
from dripengine.cli.progress import progress_bar, progress_lines
from dripengine.daemon.housekeeping import run_housekeeping
from dripengine.providers import build_provider
from dripengine.reports.timespan import span
from dripengine.sending.dispatcher import Dispatcher
from dripengine.sending.tally import RunCounts, Tally
from dripengine.sending.winners import pick_winners

PROGRESS_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


@click.command()
@click.option("--once", is_flag=True, help="Send everything due now, then exit (cron-friendly).")
@click.option(
    "--progress-every",
    "progress_every",
    type=click.FloatRange(min=0),
    default=PROGRESS_EVERY,
    show_default=True,
    envvar="DRIP_PROGRESS_EVERY",
    metavar="SECONDS",
    help="With --once and stderr not a terminal (cron, logs): a progress line on stderr every "
    "SECONDS; 0: none. On a terminal a bar is drawn instead. Env: DRIP_PROGRESS_EVERY.",
)
@click.pass_obj
def run(app: App, once: bool, progress_every: float) -> None:
    """Send due emails: every enrollment whose next step is due, inside its send window.

    `drip run --once` sends what is due and exits; `drip --now ISO-TIME run --once` acts as if it
    were that time (replays, catch-up, tests). Its stdout is the summary line; progress goes to
    stderr: a bar on a terminal, otherwise a line every 10 s ("run: 1,250 of 5,000 done, 1,200
    sent (240/s), 3 failed, 12 s").
    """
    engine = app.ready_engine()
    provider = build_provider(app.settings, engine, app.clock)
    try:
        provider.check()  # a misconfigured provider stops here, with the setting named
        # a broken campaign file (or template) pauses that campaign, not the others
        live = app.live_campaigns(check_templates=True)
        dispatcher = Dispatcher(
            engine, app.settings, live.campaigns, app.sla, provider, app.clock, only=live.only
        )
        if not once:
            import logging

            from dripengine.campaigns.live import Reloader
            from dripengine.daemon.worker import run_daemon

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
            reloader = Reloader(
                live,
                app.settings.path("campaigns"),
                app.settings.path("templates"),
                known_reasons=app.sla.known_reasons,
                now=app.now,
                check_templates=app.template_check(),
            )
            run_daemon(dispatcher, app.settings, reload=reloader.poll)
            return
        # a step whose A/B test is decided sends only its winner from this run on
        switched = pick_winners(engine, live.campaigns, app.now())
        tally = _run_once(dispatcher, progress_every)
    finally:
        provider.close()
    where = (
        f" (see {app.relative(app.settings.outbox_dir)}/)"
        if provider.name == "outbox" and tally.sent
        else ""
    )
    click.echo(
        f"{tally.sent} sent{where}, {tally.skipped} skipped, {tally.retried} to retry, "
        f"{tally.failed} failed, {tally.waiting} waiting for their window, "
        f"{tally.completed} completed, {tally.exited} exited"
        + (f"; {tally.held_back} step(s) held back from holdout leads" if tally.held_back else "")
        + (f"; {tally.recovered} interrupted message(s) resolved" if tally.recovered else "")
    )
    for error in tally.errors[:20]:
        click.echo(f"failed: {error}", err=True)
    for switch in switched:
        click.echo(switch.line())
    done = run_housekeeping(
        engine, app.settings, app.clock, app.sla, list(dispatcher.campaigns.values())
    )
    for line in done.lines():
        click.echo(line)


def _run_once(dispatcher: Dispatcher, every: float) -> Tally:
    """Send what is due, showing progress on stderr: a bar on a terminal, else a line a while."""
    # the due enrollments are counted once, as the claim takes them in batches; past that
    # count (due meanwhile) the bar stays full
    due = dispatcher.count_due()
    if sys.stderr.isatty():
        with progress_bar("sending", due) as tick:
            return dispatcher.run_once(on_progress=lambda done: tick(min(done, due)))
    latest = [RunCounts(0, 0, 0)]

    def remember(counts: RunCounts) -> None:
        latest[0] = counts

    with progress_lines(every, lambda elapsed: progress_line(latest[0], due, elapsed)):
        return dispatcher.run_once(on_counts=remember)


def progress_line(counts: RunCounts, due: int, elapsed: float) -> str:
    """``run: 1,250 of 5,000 done, 1,200 sent (240/s), 3 failed, 12 s``."""
    rate = counts.sent / elapsed if elapsed > 0 else 0.0
    per_second = f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"
    return (
        f"run: {counts.done:,} of {max(due, counts.done):,} done, {counts.sent:,} sent "
        f"({per_second}/s), {counts.failed:,} failed, {span(timedelta(seconds=elapsed))}"
    )
