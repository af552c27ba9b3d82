"""``drip feedback``: sales says what became of a lead dripengine handed back."""

from __future__ import annotations

import getpass

import click

from dripengine.cli.app import App
from dripengine.cli.choice import Choice
from dripengine.cli.output import emit_object, format_option, terminal_safe
from dripengine.funnel.feedback import record
from dripengine.funnel.feedback_plan import FeedbackRequest
from dripengine.funnel.recycle_request import RecycleContext
from dripengine.stages import RECYCLABLE


@click.command()
@click.argument("email")
@click.option("--accepted", "outcome", flag_value="accepted", help="Sales took it: MQL -> SAL.")
@click.option(
    "--rejected",
    "outcome",
    flag_value="rejected",
    help="Sales did not take it (with --reason): back to recycled under the SLA's rules.",
)
@click.option("--won", "outcome", flag_value="won", help="The deal closed: -> customer.")
@click.option(
    "--lost",
    "outcome",
    flag_value="lost",
    help="An accepted lead that did not close; with --reason it is recycled like drip recycle.",
)
@click.option("--reason", help="Reason code from sla.yaml (`drip sla` lists them).")
@click.option(
    "--from",
    "from_stage",
    type=Choice(RECYCLABLE, case_sensitive=False),
    help="With --lost --reason: the stage the deal was lost in (default: dripengine's).",
)
@click.option("--note", help="Free text from sales, kept with the feedback.")
@click.option("--actor", help="Who reports (default: your user name).")
@format_option
@click.pass_obj
def feedback(
    app: App,
    email: str,
    outcome: str | None,
    reason: str | None,
    from_stage: str | None,
    note: str | None,
    actor: str | None,
    fmt: str,
) -> None:
    """Record what became of a lead dripengine handed back to sales.

    \b
    drip feedback jane@acme.example --accepted
    drip feedback bob@acme.example --rejected --reason no_budget --note "freeze until Q3"
    drip feedback jane@acme.example --won
    drip feedback jane@acme.example --lost --reason chose_competitor --from opportunity
    """
    if outcome is None:
        raise click.UsageError("say what sales decided: --accepted, --rejected, --won or --lost")
    request = FeedbackRequest(
        email=email,
        outcome=outcome,
        reason=reason,
        note=note,
        actor=actor or _user(),
        from_stage=from_stage,
    )
    engine = app.ready_engine()
    campaigns = app.campaigns if outcome in ("rejected", "lost") else []
    ctx = RecycleContext(
        campaigns=campaigns,
        sla=app.sla,
        now=app.now(),
        reset_score=app.settings.scoring.reset_on_recycle,
    )
    result = record(engine, request, ctx)
    if not emit_object(result.as_dict(), fmt):  # csv: the result as one row
        click.echo(terminal_safe(result.describe()))  # it may quote lead data


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
