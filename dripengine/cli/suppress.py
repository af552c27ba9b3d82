"""``drip suppress``: the addresses never mailed again: list, add, remove."""

from __future__ import annotations

import click

from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.lazy import LazyGroup
from dripengine.cli.output import emit_rows, format_option
from dripengine.leads.optout import suppress as suppress_address
from dripengine.leads.optout import unsuppress
from dripengine.leads.suppression import REASONS
from dripengine.storage.queries import SUPPRESSION_COLUMNS, list_suppressions


@click.group(cls=LazyGroup)
def suppress() -> None:
    """The suppression list: addresses that are never mailed again.

    Unsubscribes, hard bounces and spam reports land here by themselves; `drip suppress add`
    puts an address here by hand. Erased people (`drip leads forget`) appear by their hash only.
    """


@suppress.command("list")
@click.option("--reason", type=Choice(REASONS), help="Only this reason.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (newest first).")
@format_option
@click.pass_obj
def suppress_list(app: App, reason: str | None, limit: int | None, fmt: str) -> None:
    """Every suppressed address, newest first."""
    rows = list_suppressions(app.ready_engine(), reason=reason, limit=limit)
    emit_rows(rows, fmt, SUPPRESSION_COLUMNS, empty="no address is suppressed")


@suppress.command("add")
@click.argument("email")
@click.option(
    "--reason",
    type=Choice([r for r in REASONS if r != "erased"]),
    default="manual",
    show_default=True,
    help="Why (unsubscribe / hard_bounce / spam_report when you learnt of one elsewhere).",
)
@click.option("--note", help="A note kept with the entry (who asked, where).")
@click.pass_obj
def suppress_add(app: App, email: str, reason: str, note: str | None) -> None:
    """Suppress an address: every active enrollment of its lead exits at once."""
    done = suppress_address(app.ready_engine(), email, reason, app.now(), note=note)
    if not done.added:
        click.echo(f"{done.email} was suppressed already (its first reason is kept)", nl=False)
    else:
        click.echo(f"{done.email} suppressed ({reason})", nl=False)
    click.echo(f"; {done.exited} enrollment(s) exited" if done.exited else "")


@suppress.command("remove")
@click.argument("email")
@click.option(
    "--force",
    is_flag=True,
    help="Remove even a spam report, a hard bounce or an erasure (think twice).",
)
@click.pass_obj
def suppress_remove(app: App, email: str, force: bool) -> None:
    """Take an address off the list (only when the person asked to be mailed again).

    Refused without --force for a spam report (mailing a complainer again hurts the sender's
    reputation with every mailbox provider), a hard bounce (the address does not exist) and an
    erasure. Enrollments that ended stay ended: recycle the lead to enroll it again.
    """
    entry = unsuppress(app.ready_engine(), email, force=force)
    click.echo(f"{entry.email} is no longer suppressed (was: {entry.reason})")
