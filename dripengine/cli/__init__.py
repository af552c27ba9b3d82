"""The ``drip`` command: thin over the core. Parse, call, print.

A :class:`~dripengine.exceptions.DripError` becomes one line on stderr and exit status 1; usage
errors exit 2 (click's convention); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from dripengine import __version__
from dripengine.cli.app import App
from dripengine.exceptions import DripError


class DripGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DripError as exc:
            raise click.ClickException(exc.message) from None
        except OperationalError as exc:
            raise click.ClickException(f"database error: {exc.orig}") from None


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-12-01T10:00:00+00:00)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.group(cls=DripGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drip")
@click.option(
    "--config",
    "config_path",
    envvar="DRIP_CONFIG",
    type=click.Path(dir_okay=False),
    help="drip.toml to use (default: ./drip.toml; env DRIP_CONFIG).",
)
@click.option(
    "--now",
    callback=_parse_now,
    metavar="ISO-TIME",
    help="Act as if it were this time (replays, catch-up, tests); default: the clock.",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, now: datetime | None) -> None:
    """dripengine: win back the leads sales gave back.

    Recycle lost leads into the campaign that fits why they came back, send the sequence that fits
    where they stand, and hand them back to sales when they are ready.
    """
    app = App(config_path=config_path, now_override=now)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    from dripengine.cli import authoring, campaigns, db, init, leads, recycle, run, sla, status

    main.add_command(init.init)
    main.add_command(db.db)
    main.add_command(leads.leads)
    main.add_command(recycle.recycle)
    main.add_command(campaigns.campaigns)
    main.add_command(sla.sla)
    main.add_command(authoring.send_test)
    main.add_command(run.run)
    main.add_command(status.status)
    from dripengine.cli import events, serve

    main.add_command(serve.serve)
    main.add_command(events.events)
    from dripengine.cli import demo

    main.add_command(demo.demo)
    from dripengine.cli import scoring, suppress

    main.add_command(scoring.scoring)
    main.add_command(suppress.suppress)
    campaigns.campaigns.add_command(authoring.preview)
    campaigns.campaigns.add_command(authoring.simulate_command)
    from dripengine.cli import feedback, scoring_review

    main.add_command(feedback.feedback)
    scoring.scoring.add_command(scoring_review.review_command)
    from dripengine.cli import stats

    main.add_command(stats.stats_command)
    from dripengine.cli import report_html

    main.add_command(report_html.report_command)


_register()

__all__ = ["main"]
