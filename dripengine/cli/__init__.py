"""The ``drip`` command: thin over the core. Parse, call, print.

A :class:`~dripengine.exceptions.DripError` becomes one line on stderr and exit status 1; usage
errors exit 2 (click's convention); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from dripengine import __version__
from dripengine.cli.lazy import LazyCommand, LazyGroup
from dripengine.exceptions import DripError

# `drip serve`'s help, given to the command (cli/serve.py): it names the ESP whose webhooks the app
# serves, and this module is the one place of the CLI that names an ESP (issue 13)
SERVE_HELP = (
    "Serve the web app: SendGrid's event webhook and Inbound Parse, tracking, unsubscribe, API.\n"
    "\n"
    "Put it behind your HTTPS proxy and set sender.base_url (DRIP_BASE_URL) to its public URL.\n"
    'GET /healthz answers 200 {"status": "ok"} while the database answers, else 503. Stops cleanly on SIGTERM / Ctrl-C.\n'
)

# Each command, where it lives and its short help for `drip --help`, imported on first use (see
# :mod:`dripengine.cli.lazy`); tests/test_cli_startup.py holds each short help to the command's own.
COMMANDS = {
    "init": LazyCommand(
        "dripengine.cli.init:init",
        "Create a working folder: drip.toml, sla.yaml, campaigns/, templates/, drip.db.",
    ),
    "db": LazyCommand("dripengine.cli.db:db", "Database schema: upgrade and status."),
    "leads": LazyCommand(
        "dripengine.cli.leads:leads", "Leads: import a CSV, show one, list many, forget one."
    ),
    "recycle": LazyCommand(
        "dripengine.cli.recycle:recycle",
        "Take back a lead sales gave back and enroll it in the campaign that fits.",
    ),
    "campaigns": LazyCommand(
        "dripengine.cli.campaigns:campaigns", "Campaign files: check them, list them, show one."
    ),
    "sla": LazyCommand(
        "dripengine.cli.sla:sla",
        "Print the agreed MQL/SQL definitions, recycle reasons and requalification rule.",
    ),
    "send-test": LazyCommand(
        "dripengine.cli.authoring:send_test",
        "Send one step to yourself through the configured provider, marked [TEST].",
    ),
    "run": LazyCommand(
        "dripengine.cli.run:run",
        "Send due emails: every enrollment whose next step is due, inside its send window.",
    ),
    "status": LazyCommand(
        "dripengine.cli.status:status",
        "What sending is doing, each campaign's next email, why nothing goes out.",
    ),
    "serve": LazyCommand("dripengine.cli.serve:serve", SERVE_HELP.partition("\n")[0]),
    "events": LazyCommand(
        "dripengine.cli.events:events", "Engagement events: replay provider exports."
    ),
    "demo": LazyCommand(
        "dripengine.cli.demo:demo",
        "Run the whole loop in a fresh folder DIRECTORY (default: ./demo).",
    ),
    "scoring": LazyCommand(
        "dripengine.cli.scoring:scoring",
        "Behaviour scoring: explain a lead's score; review how well scores predicted sales' "
        "verdicts.",
    ),
    "suppress": LazyCommand(
        "dripengine.cli.suppress:suppress",
        "The suppression list: addresses that are never mailed again.",
    ),
    "feedback": LazyCommand(
        "dripengine.cli.feedback:feedback",
        "Record what became of a lead dripengine handed back to sales.",
    ),
    "touches": LazyCommand(
        "dripengine.cli.touches:touches",
        "Sales touches: a rep's call, email or meeting holds marketing email to the lead.",
    ),
    "stats": LazyCommand(
        "dripengine.cli.stats:stats_command",
        "What the campaigns did: sent, opened, clicked, requalified, with rates.",
    ),
    "report": LazyCommand(
        "dripengine.cli.report:report_command",
        "Write the stats as one HTML page with charts.",
    ),
}


class DripGroup(LazyGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DripError as exc:
            from dripengine.cli.output import terminal_safe  # lazily: rich is slow to import

            # an error may quote what it refused (a value from a file, the database)
            raise click.ClickException(terminal_safe(exc.message)) from None
        except Exception as exc:
            reason = _database_error_reason(exc)
            if reason is None:
                raise
            from dripengine.cli.output import terminal_safe

            raise click.ClickException(f"database error: {terminal_safe(reason)}") from None


def _database_error_reason(exc: BaseException) -> str | None:
    """The driver's reason when ``exc`` is a database error, else None; without importing the
    database stack: a command that never opened an engine (``drip sla``, ``drip --help``), so
    never loaded :mod:`dripengine.storage.engine`, cannot have raised one."""
    if "dripengine.storage.engine" not in sys.modules:
        return None
    from dripengine.storage.engine import database_error_reason

    return database_error_reason(exc)


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    from dripengine.cli.nowtime import parse_now
    from dripengine.clock import SystemClock

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
