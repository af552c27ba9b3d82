"""``drip campaigns``: validate, list, show."""

from __future__ import annotations

import contextlib
from typing import Any

import click
from rich.table import Table

from dripengine.campaigns import WEEKDAYS, Campaign, validate_campaigns
from dripengine.campaigns.durations import format_duration
from dripengine.cli.app import App
from dripengine.cli.lazy import LazyGroup
from dripengine.cli.output import console, emit_object, emit_rows, format_option, shown
from dripengine.exceptions import CampaignError, DripError, SLAError
from dripengine.storage.pauses import resume
from dripengine.suggest import did_you_mean
from dripengine.templates import check_templates


@click.group(
    cls=LazyGroup,
    lazy={
        "preview": "dripengine.cli.authoring:preview",
        "simulate": "dripengine.cli.authoring:simulate_command",
    },
)
def campaigns() -> None:
    """Campaign files: check them, list them, show one."""


@campaigns.command("validate")
@click.pass_obj
def campaigns_validate(app: App) -> None:
    """Check the SLA file, every campaign file and the templates its steps use.

    Each problem is printed as file:line: message. Templates are rendered against a sample lead:
    MJML and Jinja errors, undefined variables, a missing unsubscribe link or postal address.
    """
    directory = app.settings.path("campaigns")
    problems: list[str] = []
    known_reasons: list[str] | None = None
    try:
        known_reasons = app.sla.known_reasons
    except SLAError as exc:
        problems += exc.errors  # campaigns are still checked, without the reason codes
    loaded, errors = validate_campaigns(
        directory, known_reasons=known_reasons, templates_dir=app.settings.path("templates")
    )
    problems += errors
    templates_dir = app.settings.path("templates")
    template_problems = check_templates(
        loaded,
        templates_dir,
        postal_address=app.settings.sender.postal_address,
        base_url=app.settings.sender.base_url,
        campaigns_dir=directory,
    )
    problems += template_problems
    for problem in problems:
        click.echo(problem, err=True)
    files = len(list(directory.glob("*.y*ml"))) if directory.is_dir() else 0
    if problems:
        raise click.ClickException(
            f"{len(problems)} problem(s); {len(loaded)} of {files} campaign file(s) valid"
        )
    steps = sum(len(t.steps) for c in loaded for t in c.tracks.values())
    click.echo(
        f"{len(loaded)} campaign(s) valid in {app.relative(directory)}; SLA valid; "
        f"{steps} step template(s) render"
    )


def summary(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "priority": campaign.priority,
        "version": campaign.version,
        "stages": list(campaign.audience.stages),
        "reasons": list(campaign.audience.reasons) or ["any"],
        "tracks": list(campaign.tracks),
        "steps": sum(len(t.steps) for t in campaign.tracks.values()),
    }


@campaigns.command("list")
@format_option
@click.pass_obj
def campaigns_list(app: App, fmt: str) -> None:
    """Campaigns in routing order (lowest priority number first)."""
    ordered = sorted(app.campaigns, key=lambda c: (c.priority, c.id))
    rows = [summary(c) for c in ordered]
    if fmt == "text":
        rows = [
            {
                **r,
                "stages": ", ".join(r["stages"]),
                "reasons": ", ".join(r["reasons"]),
                "tracks": ", ".join(r["tracks"]),
            }
            for r in rows
        ]
    emit_rows(
        rows,
        fmt,
        ["id", "name", "priority", "stages", "reasons", "tracks", "steps"],
        empty="no campaigns",
    )


@campaigns.command("show")
@click.argument("campaign_id")
@format_option
@click.pass_obj
def campaigns_show(app: App, campaign_id: str, fmt: str) -> None:
    """Audience, re-entry policy, send window, tracks and steps of one campaign."""
    found = {c.id: c for c in app.campaigns}
    if campaign_id not in found:
        raise CampaignError(
            f'no campaign "{campaign_id}"{did_you_mean(campaign_id, found)} '
            f"(known: {', '.join(sorted(found)) or 'none'})"
        )
    campaign = found[campaign_id]
    steps = [
        {
            "track": track,
            "step": step.id,
            "wait": step.wait,
            "template": step.template,
            "subject": step.subject,
        }
        for track, step in campaign.all_steps()
    ]
    columns = ["track", "step", "wait", "template", "subject"]
    if emit_object(campaign.model_dump(mode="json", by_alias=True), fmt, rows=(columns, steps)):
        return
    out = console()
    out.print(
        f"[bold]{shown(campaign.name)}[/bold] ({campaign.id}, version {campaign.version}, priority {campaign.priority})"
    )
    if campaign.description:
        out.print(campaign.description.strip())
    audience = campaign.audience
    out.print(
        f"  audience   from {', '.join(audience.stages)}; reasons {', '.join(audience.reasons) or 'any'}"
    )
    for key, value in audience.attributes.items():
        out.print(f"             {key} = {value}")
    reentry = campaign.reentry
    out.print(
        f"  re-entry   {reentry.policy}; cool-down {reentry.cooldown_days} day(s); "
        f"max recycles {reentry.max_recycles or 'unlimited'}"
    )
    window = campaign.send.window
    days = ", ".join(WEEKDAYS[d].title() for d in window.days)
    out.print(
        f"  sends      {days} {window.start:%H:%M}-{window.end:%H:%M} lead's time (fallback {campaign.send.timezone})"
    )
    out.print(f"  from       {campaign.send.from_}")
    out.print(
        f"  exits on   {', '.join(campaign.exit.on)}"
        + (f"; after {campaign.exit.after_days} days" if campaign.exit.after_days else "")
    )
    for name, track in campaign.tracks.items():
        table = Table(title=f"track {name} (score ≥ {track.min_score:g})", title_justify="left")
        for column in ("step", "wait", "template", "subject", "condition"):
            table.add_column(column)
        for step in track.steps:
            condition = ""
            if step.condition is not None:
                condition = step.condition.event + (
                    f" {step.condition.step}" if step.condition.step else ""
                )
            table.add_row(
                step.id, format_duration(step.wait), step.template, step.subject, condition
            )
            for variant in step.variants or []:
                table.add_row(
                    f"  variant {variant.id} (weight {variant.weight:g})",
                    "",
                    variant.template or "(the step's)",
                    variant.subject or "(the step's)",
                    "",
                )
        out.print()
        out.print(table)
    for line in variant_lines(app, campaign):
        out.print(line, markup=False)


def variant_lines(app: App, campaign: Campaign) -> list[str]:
    """Where each A/B test of the campaign stands: its rule, and its winner when one is recorded
    (the database is asked only when it is there)."""
    tests = [step for _, step in campaign.all_steps() if step.variants]
    if not tests:
        return []
    decided: dict[str, Any] = {}
    with contextlib.suppress(DripError):
        from dripengine.storage.variants import winner_rows

        with app.ready_engine().connect() as connection:
            decided = {w.step_id: w for w in winner_rows(connection, [campaign.id])}
    lines = [""]
    for step in tests:
        rule = step.pick_winner
        text = (
            f"A/B {step.id}: pick a winner on {rule.metric} once each variant has "
            f"{rule.min_sends} sent, at {rule.confidence:.0%} confidence"
            if rule
            else f"A/B {step.id}: no pick_winner, each variant keeps its share"
        )
        won = decided.get(step.id)
        if won is not None:
            text += (
                f"; {won.variant} won on {won.decided_at:%Y-%m-%d %H:%M} UTC and is sent to "
                "everyone (`drip stats --by variant` has the figures)"
            )
        lines.append(text)
    return lines


@campaigns.command("resume")
@click.argument("campaign_id", metavar="ID")
@click.pass_obj
def campaigns_resume(app: App, campaign_id: str) -> None:
    """End the pause of a campaign the complaint breaker paused (`drip status` lists them).

    The breaker then judges the campaign only on what it sends from now on. Clean the list that
    drew the complaints or bounces first: a campaign that keeps drawing them pauses again.
    """
    with app.ready_engine().begin() as connection:
        ended = resume(connection, campaign_id, app.now())
    if ended is None:
        raise CampaignError(
            f"campaign {campaign_id} is not paused (`drip status` lists the paused ones)"
        )
    click.echo(
        f"campaign {campaign_id} resumed (paused since {ended.paused_at:%Y-%m-%d %H:%M} UTC: "
        f"{ended.reason}); its due emails go out on the next `drip run`"
    )
