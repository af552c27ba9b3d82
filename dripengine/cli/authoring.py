"""``drip campaigns preview|simulate`` and ``drip send-test``: check an email before it goes out."""

from __future__ import annotations

from pathlib import Path

import click

from dripengine.authoring.preview import (
    PreviewLead,
    find_campaign,
    find_step,
    load_lead,
    pick_variant,
    render_step,
    sample_lead,
    test_email,
)
from dripengine.authoring.simulate import PATTERNS, SimLead, format_timeline, simulate
from dripengine.campaigns import Step
from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.output import emit_object, format_option, terminal_safe
from dripengine.emails import InvalidEmail, normalise_email
from dripengine.exceptions import DripError
from dripengine.providers import provider_from_settings
from dripengine.storage.holdout import holdout_addresses
from dripengine.templates import TemplateEngine, TemplateError

lead_option = click.option(
    "--lead", "lead_email", help="Render for this lead (its fields and recycle)."
)
sample_option = click.option(
    "--sample", is_flag=True, help="Render for the built-in sample lead (the default)."
)
variant_option = click.option(
    "--variant",
    "variant_id",
    metavar="ID",
    help="A step with A/B variants: render this variant (default: the one the lead gets).",
)


def _lead(app: App, email: str | None) -> PreviewLead:
    if email is None:
        return sample_lead()
    return load_lead(app.ready_engine(), email, app.sla)


def _engine(app: App) -> TemplateEngine:
    return TemplateEngine(app.settings.path("templates"))


@click.command("preview")
@click.argument("campaign_id")
@click.option("--step", "step_id", help="Step id (default: the first step).")
@lead_option
@sample_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML to this file."
)
@click.option("--text", "show_text", is_flag=True, help="Print the plain-text part.")
@click.option("--html", "show_html", is_flag=True, help="Print the HTML.")
@variant_option
@click.pass_obj
def preview(
    app: App,
    campaign_id: str,
    step_id: str | None,
    lead_email: str | None,
    sample: bool,
    out: Path | None,
    show_text: bool,
    show_html: bool,
    variant_id: str | None,
) -> None:
    """Render one step exactly as a lead would get it: subject, preheader, links, HTML, text."""
    if sample and lead_email:
        raise click.UsageError("give --lead EMAIL or --sample, not both")
    campaign = find_campaign(app.campaigns, campaign_id)
    track, step = find_step(campaign, step_id)
    lead = _lead(app, lead_email)
    engine = None if lead.sample else app.ready_engine()
    variant = pick_variant(campaign, step, lead, variant_id, engine)
    try:
        rendered = render_step(
            _engine(app), campaign, track, step, lead, app.settings, variant=variant
        )
    except TemplateError as exc:
        raise DripError(str(exc)) from None
    if show_html:
        click.echo(rendered.html)
        return
    if show_text:
        click.echo(rendered.text, nl=False)
        return
    who = "the sample lead" if lead.sample else lead.email
    # lead data in one-line views is terminal-safe; --text and --html print the email as it is
    click.echo(f"{campaign.name} / {step.id} (track {track}) for {terminal_safe(who)}")
    if variant is not None and step.variants:
        others = ", ".join(v.id for v in step.variants)
        how = "asked for" if variant_id else "the lead's"
        click.echo(f"  variant    {variant.id} ({how}; variants: {others}; --variant ID)")
    click.echo(f"  subject    {terminal_safe(rendered.subject)}")
    click.echo(f"  preheader  {terminal_safe(rendered.preheader)}")
    for link in rendered.links:
        tag = f"  [{link.tag}]" if link.tag else ""
        click.echo(f"  link       {terminal_safe(link.url)}{tag}")
    if out is not None:
        out.write_text(rendered.html, encoding="utf-8")
        click.echo(f"  html       {out} ({len(rendered.html.encode()):,} bytes)")
    else:
        click.echo("  (--out FILE writes the HTML; --text prints the plain-text part)")


@click.command(
    "simulate", short_help="A campaign's timeline for one lead, step by step; sends nothing."
)
@click.argument("campaign_id")
@lead_option
@sample_option
@click.option(
    "--engagement",
    type=Choice(PATTERNS),
    default="none",
    show_default=True,
    help="What the lead does with each email.",
)
@click.option(
    "--score",
    type=click.FloatRange(min=0),
    help="Start from this score (default: the lead's; 0 for the sample, a fresh recycle).",
)
@format_option
@click.pass_obj
def simulate_command(
    app: App,
    campaign_id: str,
    lead_email: str | None,
    sample: bool,
    engagement: str,
    score: float | None,
    fmt: str,
) -> None:
    """The campaign's timeline for one lead: when each step goes out, how the score moves,
    where the lead would requalify or finish. Sends nothing and writes nothing."""
    if sample and lead_email:
        raise click.UsageError("give --lead EMAIL or --sample, not both")
    campaign = find_campaign(app.campaigns, campaign_id)
    lead = _lead(app, lead_email)
    reason = app.sla.recycle_reasons.get(str(lead.recycle.get("reason", "")))
    recycle_count = int(lead.fields.get("recycle_count") or 1)
    engine = _engine(app)

    def rendered(step: Step) -> tuple[str, list[str]]:
        track = next(t for t, s in campaign.all_steps() if s.id == step.id)
        try:
            variant = pick_variant(campaign, step, lead, None)
            email = render_step(engine, campaign, track, step, lead, app.settings, variant=variant)
        except TemplateError as exc:
            raise DripError(str(exc)) from None
        return email.subject, [link.tag for link in email.links if link.tag]

    timeline = simulate(
        campaign,
        SimLead(
            email=lead.email,
            score=score
            if score is not None
            else 0.0
            if lead.sample
            else float(lead.fields.get("score") or 0),
            timezone=lead.fields.get("timezone"),
            reason_may_requalify=reason.may_requalify if reason else True,
            recycle_count=recycle_count,
        ),
        start=app.now(),
        pattern=engagement,  # type: ignore[arg-type]
        threshold=app.sla.requalification.threshold(recycle_count),
        subject_for=lambda step: rendered(step)[0],
        tags_for=lambda step: rendered(step)[1],
    )
    entries = [
        {k: (v.isoformat() if k == "at" else v) for k, v in vars(e).items()}
        for e in timeline.entries
    ]
    payload = {
        "campaign_id": campaign.id,
        "email": lead.email,
        "engagement": engagement,
        "timezone": timeline.timezone.key,
        "outcome": timeline.outcome,
        "entries": entries,
    }
    columns = list(entries[0]) if entries else ["at"]
    if emit_object(payload, fmt, rows=(columns, entries)):  # csv: one row a timeline entry
        return
    for line in format_timeline(timeline):
        click.echo(line)


MAX_TEST_RECIPIENTS = 10


def _test_recipients(value: str) -> list[str]:
    """``--to``: one address or a comma-separated list, each a valid address (email-validator)."""
    addresses = [part.strip() for part in value.split(",") if part.strip()]
    if not addresses:
        raise click.BadParameter("give an address, e.g. --to me@acme.example")
    if len(addresses) > MAX_TEST_RECIPIENTS:
        raise click.BadParameter(
            f"{len(addresses)} addresses; a test goes to at most {MAX_TEST_RECIPIENTS}"
        )
    checked = []
    for address in addresses:
        try:
            checked.append(normalise_email(address))
        except InvalidEmail as exc:
            raise click.BadParameter(f'"{address}" is not an email address: {exc}') from None
    return checked


@click.command("send-test")
@click.argument("campaign_id")
@click.option("--step", "step_id", help="Step id (default: the first step).")
@click.option(
    "--to",
    "to",
    required=True,
    callback=lambda _ctx, _param, value: _test_recipients(value),
    help=f"Where the test goes: your own address, or up to {MAX_TEST_RECIPIENTS} separated by commas.",
)
@lead_option
@variant_option
@click.pass_obj
def send_test(
    app: App,
    campaign_id: str,
    step_id: str | None,
    to: list[str],
    lead_email: str | None,
    variant_id: str | None,
) -> None:
    """Send one step to yourself through the configured provider, marked [TEST].

    Test sends are not recorded as messages: they count in no statistic and move no score.
    """
    campaign = find_campaign(app.campaigns, campaign_id)
    track, step = find_step(campaign, step_id)
    lead = _lead(app, lead_email)
    engine = None if lead.sample else app.ready_engine()
    variant = pick_variant(campaign, step, lead, variant_id, engine)
    try:
        rendered = render_step(
            _engine(app), campaign, track, step, lead, app.settings, purpose="test", variant=variant
        )
    except TemplateError as exc:
        raise DripError(str(exc)) from None
    _refuse_holdout(app, campaign.id, to)
    provider = provider_from_settings(app.settings)
    emails = [test_email(rendered, campaign, address, app.now(), app.settings) for address in to]
    try:
        results = provider.send(emails)
    finally:
        provider.close()
    refused = 0
    for address, result in zip(to, results, strict=True):
        if result.status != "sent":
            refused += 1
            click.echo(f"{address}: {provider.name} did not take the test email: {result.error}")
            continue
        where = f" ({result.where})" if result.where else ""
        shown_variant = f" (variant {variant.id})" if variant is not None else ""
        click.echo(
            f'test of "{campaign.id}" / {step.id}{shown_variant} sent to {address} '
            f"via {provider.name}{where}"
        )
    if refused:
        raise DripError(f"{refused} of {len(to)} test email(s) not sent")


def _refuse_holdout(app: App, campaign_id: str, to: list[str]) -> None:
    """A lead in the campaign's holdout group is sent nothing, not even a test (docs/holdout.md)."""
    try:
        engine = app.ready_engine()
    except DripError:
        return  # no database yet: no lead, so nobody in a holdout group
    with engine.connect() as connection:
        held = holdout_addresses(connection, campaign_id, to)
    if held:
        raise DripError(
            f"{', '.join(held)}: in the holdout group of {campaign_id}, which is sent nothing, "
            "not even a test; send the test to your own address (--to you@…)"
        )
