"""``drip stats``: what the campaigns did, by campaign, step, week or recycle reason."""

from __future__ import annotations

import contextlib
from typing import Any

import click
from rich import box
from rich.table import Table

from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.output import console, emit_rows, format_option
from dripengine.exceptions import DripError, StatsError
from dripengine.reports import holdout, stats
from dripengine.reports.since import parse_since
from dripengine.storage.stats import known_campaigns
from dripengine.suggest import did_you_mean

SINCE_HELP = "Only what happened since then: 90d, 12h, 2w, or an ISO date like 2026-09-01."

FOOTERS = {
    "campaign": (
        "rates: delivered / sent; human opens, machine opens, clicks, replies, unsubscribes and "
        "complaints / delivered; bounces / sent; requalified / enrolled",
        "each email counts once per outcome; machine opens = opened only by a privacy proxy; "
        "clicks leave out link scanners",
    ),
    "step": (
        "rates: sent / the track's first step's sent; delivered / sent; opens, clicks, replies, "
        "unsubscribes and complaints / delivered; bounces / sent",
        "each email counts once per outcome; machine opens = opened only by a privacy proxy",
    ),
    "reason": (
        "rates: engaged and requalified / recycled; accepted and won / requalified",
        "one row per recycle reason; each recycle counts until the lead's next recycle; "
        "accepted includes won (sales' word from `drip feedback`)",
    ),
}
FOOTERS["week"] = (
    FOOTERS["campaign"][0],
    "weeks run Monday to Sunday (UTC); emails count in the week they were sent",
)
EMPTY_HINTS = {
    "reason": "no recycles in this window: `drip recycle EMAIL --from sql --reason CODE` "
    "(or --csv) gives leads back to dripengine",
}
EMPTY_HINT = (
    "nothing counted yet: no enrolments, emails or hand-backs in this window "
    "(`drip recycle` puts leads into campaigns, `drip run` sends, events come in through "
    "`drip serve` or `drip events ingest`)"
)


def window_of(app: App, since: str | None) -> stats.Window:
    """The window from ``--since`` at the app's clock; a wrong form names the accepted ones."""
    now = app.now()
    if since is None:
        return stats.Window(now=now)
    try:
        return stats.Window(now=now, since=parse_since(since, now))
    except ValueError as exc:
        raise StatsError(f"--since: {exc}") from None


def check_campaign(app: App, campaign: str | None) -> None:
    """Refuse a campaign id that neither the database nor the campaign files know."""
    if campaign is None:
        return
    with app.ready_engine().connect() as connection:
        known = set(known_campaigns(connection))
    if campaign in known:
        return
    # campaign files with errors: the database's list is all there is to offer
    with contextlib.suppress(DripError):
        known |= {c.id for c in app.campaigns}
    if campaign not in known:
        offer = ", ".join(sorted(known)) or "none yet"
        hint = did_you_mean(campaign, known)
        raise StatsError(f'no campaign "{campaign}"{hint} (campaigns: {offer})')


@click.command(
    "stats", short_help="What the campaigns did: sent, opened, clicked, requalified, with rates."
)
@click.argument("campaign", required=False)
@click.option(
    "--by",
    type=Choice((*stats.BY, "variant")),
    default="campaign",
    show_default=True,
    help="campaign; step (per track and step); week; reason (the closed loop per recycle reason); "
    "variant (each A/B variant of a step, and its winner).",
)
@click.option("--since", metavar="SPAN|DATE", help=SINCE_HELP)
@format_option
@click.pass_obj
def stats_command(app: App, campaign: str | None, by: str, since: str | None, fmt: str) -> None:
    """What the campaigns did: enrolled, sent, delivered, human and machine opens, clicks, replies,
    unsubscribes, bounces, complaints, requalified; rates beside the counts.

    With CAMPAIGN, only that campaign. `--by reason` is the closed loop: recycled -> engaged ->
    requalified -> accepted -> won per recycle reason. Every figure is counted by the database;
    docs/stats.md says what each one means and what each rate is divided by.
    """
    window = window_of(app, since)
    check_campaign(app, campaign)
    if by == "variant":
        from dripengine.cli.stats_variants import print_variants

        print_variants(app, window, campaign, since, fmt)
        return
    with app.ready_engine().connect() as connection:
        rows = stats.read(connection, by, window, campaign)
        lifts = holdout.lift_by_campaign(connection, window, campaign) if by == "campaign" else {}
    view = stats.VIEWS[by]
    if fmt != "text":
        columns = [*view.keys, *(["first_step_sent"] if by == "step" else []), *view.counts]
        dicts = [r.as_dict() for r in rows]
        if by == "campaign" and fmt == "json":  # the holdout test of each campaign (nested)
            for values in dicts:
                values.update(lifts.get(values["campaign"]) or holdout.lift_of({}))
        emit_rows(dicts, fmt, [*columns, *view.rates])
        return
    _print_table(view, rows, window, campaign, since)
    tested = {name: result for name, result in lifts.items() if result["holdout"]["leads"]}
    if tested:
        out = console()
        out.print("\nholdout lift (enrolments made in the window; docs/holdout.md):", markup=False)
        for name, result in tested.items():
            out.print("  " + holdout.text_line(name, result), markup=False)


def _percent(value: float | None) -> str:
    """Two significant digits, which is what a rate in a table needs: 96%, 6.2%, 0.47%."""
    if value is None:
        return "n/a"
    percent = value * 100
    if percent >= 10 or percent == 0:
        return f"{percent:.0f}%"
    return f"{percent:.1f}%" if percent >= 1 else f"{percent:.2f}%"


def _cells(view: stats.View, row: stats.Row) -> list[str]:
    """Key cells, then each count with the rate whose numerator it is beside it."""
    beside = {num: name for name, (num, _den) in view.rates.items() if num != "sent"}
    cells = [str(row.key.get(k, "")) for k in view.keys]
    for name in view.counts:
        cell = f"{row.counts[name]:,}"
        if name in beside:
            cell += f" ({_percent(row.rate(beside[name]))})"
        elif name == "sent" and "reach_rate" in view.rates:
            cell += f" ({_percent(row.rate('reach_rate'))})"
        cells.append(cell)
    return cells


def heading(
    by: str, what: str, window: stats.Window, campaign: str | None, since: str | None
) -> str:
    """The first line of a `drip stats` table: which view, of what, over which span."""
    span = f"since {window.since:%Y-%m-%d %H:%M} ({since})" if window.since is not None else "ever"
    scope = f"campaign {campaign}" if campaign else "every campaign"
    return f"drip stats by {by}: {scope}, {what} {span} up to {window.now:%Y-%m-%d %H:%M} UTC"


def _print_table(
    view: stats.View,
    rows: list[stats.Row],
    window: stats.Window,
    campaign: str | None,
    since: str | None,
) -> None:
    out = console()
    what = "recycles made" if view.name == "reason" else "emails sent"
    out.print(heading(view.name, what, window, campaign, since), markup=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for i, column in enumerate((*view.keys, *view.counts)):
        table.add_column(
            column.replace("_", " "), justify="left" if i < len(view.keys) else "right"
        )
    for row in rows:
        table.add_row(*_cells(view, row))
    if view.name in ("campaign", "week", "reason") and len(rows) != 1:
        empty_key: dict[str, Any] = {view.keys[0]: "all"}
        summed = stats.total(rows, empty_key, view.rates)
        if not rows:
            summed.counts = dict.fromkeys(view.counts, 0)
        table.add_row(*_cells(view, summed), style="bold")
    out.print(table)
    for line in FOOTERS[view.name]:
        out.print(line, markup=False, style="dim")
    if not rows:
        out.print("hint: " + EMPTY_HINTS.get(view.name, EMPTY_HINT), markup=False)


__all__ = ["check_campaign", "heading", "stats_command", "window_of"]
