"""``drip run``: send what is due."""

from __future__ import annotations

import click

from dripengine.cli.app import App
from dripengine.cli.progress import progress_bar
from dripengine.housekeeping import run_housekeeping
from dripengine.sending.dispatcher import Dispatcher
from dripengine.sending.providers import build_provider


@click.command()
@click.option("--once", is_flag=True, help="Send everything due now, then exit (cron-friendly).")
@click.pass_obj
def run(app: App, once: bool) -> None:
    """Send due emails: every enrollment whose next step is due, inside its send window.

    `drip run --once` sends what is due and exits; `drip --now ISO-TIME run --once` acts as if it
    were that time (replays, catch-up, tests).
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
            from dripengine.daemon import run_daemon

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
            reloader = Reloader(
                live,
                app.settings.path("campaigns"),
                app.settings.path("templates"),
                known_reasons=list(app.sla.recycle_reasons),
                now=app.now,
                check_templates=app.template_check(),
            )
            run_daemon(dispatcher, app.settings, reload=reloader.poll)
            return
        # a bar on a terminal (stderr): the due enrollments counted once, as the claim takes
        # them in batches; past that count (due meanwhile) the bar stays full
        due = dispatcher.count_due()
        with progress_bar("sending", due) as tick:
            tally = dispatcher.run_once(on_progress=lambda done: tick(min(done, due)))
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
        + (f"; {tally.recovered} interrupted message(s) resolved" if tally.recovered else "")
    )
    for error in tally.errors[:20]:
        click.echo(f"failed: {error}", err=True)
    for line in run_housekeeping(engine, app.settings, app.clock).lines():
        click.echo(line)
