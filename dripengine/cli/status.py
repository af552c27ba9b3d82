"""``drip status``: enrolments by campaign and why nothing goes out, due, in flight, failed, sent,
per-provider rate, workers, serve processes."""

from __future__ import annotations

from dataclasses import asdict

import click
from rich.console import Console
from rich.table import Table

from dripengine.cli.app import App
from dripengine.cli.output import FormatChoice, _cell, console, emit_object, emit_rows, shown
from dripengine.exceptions import CampaignError
from dripengine.reports.campaign_status import CampaignStatus
from dripengine.reports.status import Status, read_status

CSV_COLUMNS = (
    "campaign_id",
    "name",
    "active",
    "due_now",
    "sendable_now",
    "next_due_at",
    "next_due_local",
    "next_due_in",
    "window",
    "window_open",
    "window_opens_at",
    "paused_since",
    "paused_reason",
    "state",
    "reason",
)


@click.command(
    short_help="What sending is doing, each campaign's next email, why nothing goes out."
)
@click.option(
    "--format",
    "fmt",
    type=FormatChoice(),
    default="text",
    show_default=True,
    help="text for people; json for scripts (every figure); csv: one row per campaign.",
)
@click.pass_obj
def status(app: App, fmt: str) -> None:
    """What sending is doing: active enrolments by campaign, when the next one is due and why
    nothing goes out now (a step's wait, the send window, a breaker pause); due now, in flight,
    retrying, failed, sent, rates, workers and `drip serve` processes.

    Read at the app's clock: `drip --now ISO-TIME status` shows the database as of that time.
    A worker (or serve process) is alive when its heartbeat is at most 45 s old, stopped when it
    said so, else dead.
    """
    engine = app.ready_engine()
    held: dict[str, str] = {}
    try:
        live = app.live_campaigns()
        campaigns, error, held = live.campaigns, None, live.why_held
    except CampaignError as exc:  # the database's figures are still worth showing
        campaigns, error = None, str(exc)
    quiet = app.settings.sending.quiet_after_sales_touch
    report = read_status(
        engine, app.now(), campaigns, campaigns_error=error, held=held, quiet=quiet
    )
    if fmt == "csv":
        emit_rows([asdict(c) for c in report.campaigns], fmt, CSV_COLUMNS)
        return
    if emit_object(report.as_dict(), fmt):
        return
    _print(report, crm_configured=bool(app.settings.crm.webhook_url))


def _print(report: Status, *, crm_configured: bool) -> None:
    out = console()
    out.print(f"drip status at {report.now:%Y-%m-%d %H:%M:%S} UTC")
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(justify="left")
    summary.add_column(justify="right")
    summary.add_column(justify="left")
    summary.add_row("active", str(report.active), "enrollments in a campaign, due or not")
    summary.add_row("due now", str(report.due_now), "active enrollments whose next step is due")
    summary.add_row("scheduled (24 h)", str(report.scheduled_24h), "due in the next 24 hours")
    if report.held_for_sales_touch:
        summary.add_row(
            "held (sales)",
            str(report.held_for_sales_touch),
            "active enrollments quiet after a rep's call, email or meeting",
        )
    summary.add_row("in flight", str(report.in_flight), "recorded as sending")
    summary.add_row("retrying", str(report.retrying), "waiting for another attempt")
    summary.add_row("failed (24 h)", str(report.failed_24h), "")
    for reason in report.failed_reasons:
        summary.add_row("", str(reason.count), _short(reason.reason))
    summary.add_row("unknown", str(report.unknown), "interrupted by a crash, not resent")
    summary.add_row("sent (1 h)", str(report.sent_1h), "")
    summary.add_row("sent (24 h)", str(report.sent_24h), "")
    out.print(summary)
    _print_campaigns(out, report.campaigns)

    if report.providers:
        rates = Table(title="providers (last 5 minutes)", title_justify="left")
        for column in ("provider", "sent 5 min", "per second", "sent 24 h"):
            rates.add_column(column, justify="left" if column == "provider" else "right")
        for p in report.providers:
            rates.add_row(p.provider, str(p.sent_5m), f"{p.rate_per_second:g}", str(p.sent_24h))
        out.print(rates)

    out.print(
        f"workers: {report.workers_alive} alive, {report.workers_dead} dead, "
        f"{report.workers_stopped} stopped"
    )
    if report.workers:
        workers = Table(show_lines=False)
        columns = ("id", "state", "provider", "heartbeat_at", "started_at", "sent", "failed")
        for column in columns:
            workers.add_column(column)
        for w in report.workers:
            workers.add_row(*(shown(_cell(getattr(w, c))) for c in columns))
        out.print(workers)
    _print_serve(out, report)
    _print_engagement(out, report, crm_configured)
    for hint in report.hints:
        out.print(f"hint: {shown(hint)}", soft_wrap=True)


def _print_serve(out: Console, report: Status) -> None:
    """The `drip serve` processes (each of --workers N), as the workers are shown."""
    out.print(
        f"serve processes: {report.serve_alive} alive, {report.serve_dead} dead, "
        f"{report.serve_stopped} stopped"
    )
    if report.serve_processes:
        table = Table(show_lines=False)
        columns = ("id", "state", "heartbeat_at", "started_at")
        for column in columns:
            table.add_column(column)
        for p in report.serve_processes:
            table.add_row(*(shown(_cell(getattr(p, c))) for c in columns))
        out.print(table)


def _print_campaigns(out: Console, campaigns: list[CampaignStatus]) -> None:
    """A row per campaign (next due in the campaign's own zone), then why, a line each."""
    if not campaigns:
        return
    table = Table(title="campaigns", title_justify="left")
    table.add_column("campaign", no_wrap=True)
    table.add_column("active", justify="right")
    table.add_column("due now", justify="right")
    table.add_column("next due (campaign's time zone)")
    for c in campaigns:
        upcoming = f"{c.next_due_local} ({c.next_due_in})" if c.next_due_local else "-"
        table.add_row(shown(c.campaign_id), str(c.active), str(c.due_now), upcoming)
    out.print(table)
    for c in campaigns:
        out.print(f"  {shown(c.campaign_id)}: {shown(c.reason)}", soft_wrap=True)


def _print_engagement(out: Console, report: Status, crm_configured: bool) -> None:
    if report.handoffs_pending or report.handoffs_delivered_24h:
        line = (
            f"handoffs to the CRM: {report.handoffs_pending} pending, "
            f"{report.handoffs_delivered_24h} delivered in 24 h"
        )
        if not crm_configured and report.handoffs_pending:
            line += " (crm.webhook_url not set: `drip leads list --requalified` is the handoff)"
        elif report.handoffs_failing:
            line += f"; {report.handoffs_failing} retrying, last error: {_short(report.handoff_error or '')}"
        out.print(line)


def _short(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
