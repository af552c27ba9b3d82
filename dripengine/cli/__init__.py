"""The ``drip`` command: thin over the core. Parse, call, print.

A :class:`~dripengine.exceptions.DripError` becomes one line on stderr and exit status 1; usage
errors exit 2 (click's convention); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from dripengine import __version__
from dripengine.cli.lazy import LazyGroup
from dripengine.exceptions import DripError

# Each command and where it lives, imported on first use (see :mod:`dripengine.cli.lazy`).
COMMANDS = {
    "init": "dripengine.cli.init:init",
    "db": "dripengine.cli.db:db",
    "leads": "dripengine.cli.leads:leads",
    "recycle": "dripengine.cli.recycle:recycle",
    "campaigns": "dripengine.cli.campaigns:campaigns",
    "sla": "dripengine.cli.sla:sla",
    "send-test": "dripengine.cli.authoring:send_test",
    "run": "dripengine.cli.run:run",
    "status": "dripengine.cli.status:status",
    "serve": "dripengine.cli.serve:serve",
    "events": "dripengine.cli.events:events",
    "demo": "dripengine.cli.demo:demo",
    "scoring": "dripengine.cli.scoring:scoring",
    "suppress": "dripengine.cli.suppress:suppress",
    "feedback": "dripengine.cli.feedback:feedback",
    "stats": "dripengine.cli.stats:stats_command",
    "report": "dripengine.cli.report_html:report_command",
}


class DripGroup(LazyGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DripError as exc:
            from dripengine.cli.output import terminal_safe  # lazily: rich is slow to import

            # an error may quote what it refused (a value from a file, the database)
            raise click.ClickException(terminal_safe(exc.message)) from None
        except DBAPIError as exc:
            # the driver's first line only: PostgreSQL's DETAIL line quotes the row's values
            reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "failed"
            from dripengine.cli.output import terminal_safe

            raise click.ClickException(f"database error: {terminal_safe(reason)}") from None


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    from dripengine.clock import SystemClock
    from dripengine.nowtime import parse_now

    try:  # relative forms count from the wall clock: this edge is where it is read
        return parse_now(value, SystemClock().now())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(cls=DripGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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
    metavar="TIME",
    help=(
        "Act as if it were this time: an ISO time, a span from now (+3d, -12h) or "
        "'next tue 10:00' (UTC). For replays, catch-up, tests; default: the clock."
    ),
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, now: datetime | None) -> None:
    """dripengine: win back the leads sales gave back.

    Recycle lost leads into the campaign that fits why they came back, send the sequence that fits
    where they stand, and hand them back to sales when they are ready.
    """
    from dripengine.cli.app import App

    app = App(config_path=config_path, now_override=now)
    ctx.obj = app
    ctx.call_on_close(app.close)


__all__ = ["main"]
