"""``drip scoring explain``: why a lead's score is what it is."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import click
from rich.table import Table

from dripengine.cli.app import App
from dripengine.cli.lazy import LazyGroup
from dripengine.cli.output import console, emit_object, format_option, shown
from dripengine.reports.leads import explain_score
from dripengine.scoring.explain import Explanation
from dripengine.stages import label


@click.group(cls=LazyGroup, lazy={"review": "dripengine.cli.scoring_review:review_command"})
def scoring() -> None:
    """Behaviour scoring: explain a lead's score; review how well scores predicted sales' verdicts."""


@scoring.command(
    "explain", short_help="Why a lead has its score: each change, the fit grade, the gap."
)
@click.argument("email")
@format_option
@click.pass_obj
def scoring_explain(app: App, email: str, fmt: str) -> None:
    """Each score change (event, points, when) and what is left of it now, the total, the fit
    grade with what the profile lacks, and the requalification threshold with the gap."""
    now = app.now()
    lead, why = explain_score(app.ready_engine(), email, app.settings, app.sla, now)
    address, stage, requalified_at = lead.email, lead.stage, lead.requalified_at
    handed_back = requalified_at if stage != "recycled" else None
    facts = {"email": address, "stage": stage, "requalified_at": requalified_at}
    changes = [asdict(line) for line in why.lines]
    columns = list(changes[0]) if changes else ["at", "event", "points", "now"]
    payload = {**facts, "now": now, **asdict(why), "ready": why.ready}
    if emit_object(payload, fmt, rows=(columns, changes)):  # csv: one row a score change
        return
    _print(address, why, handed_back, stage)


def _print(
    email: str, why: Explanation, handed_back: datetime | None = None, stage: str = "recycled"
) -> None:
    out = console()
    out.print(
        f"[bold]{shown(email)}[/bold]: score {why.score:.1f} now "
        f"(each change halves every {why.half_life_days:g} days)"
    )
    if why.lines:
        table = Table(show_lines=False)
        for column, justify in (
            ("when (UTC)", "left"),
            ("event", "left"),
            ("points", "right"),
            ("now", "right"),
            ("reason", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for line in why.lines:
            table.add_row(
                f"{line.at:%Y-%m-%d %H:%M}",
                line.event_type or "",
                f"{line.points:+g}",
                f"{line.now:.1f}" if line.counts else "-",
                shown(line.reason),  # "click [pricing] in …" is no markup
            )
        out.print(table)
        if not all(line.counts for line in why.lines):
            out.print("  -: before the score last started again from zero; it no longer counts")
    else:
        out.print("  no score changes yet")
    if why.carried:
        out.print(f"  {why.carried:.1f} carried from before the history shown")
    if why.unexplained:
        out.print(f"  {why.unexplained:+.1f} not explained by the rows kept")
    fit = why.fit
    missing = f"; missing: {', '.join(fit.missing)}" if fit.missing else ""
    rules = f"; rules: {', '.join(fit.matched)}" if fit.matched else ""
    verdict = "meets" if why.fit_ok else "is below"
    out.print(
        f"fit grade {fit.grade} ({fit.points:g} points{missing}{rules}): {verdict} the SLA's "
        f"minimum {why.min_fit}"
    )
    gap = f"{why.gap:.1f} to go" if why.gap > 0 else "reached"
    out.print(f"requalification threshold {why.threshold:g}: {gap}")
    if why.scoring_stopped_at:
        out.print(f"scoring stopped on {why.scoring_stopped_at:%Y-%m-%d} (an objection or erasure)")
    if not why.may_requalify:
        out.print("its recycle reason never requalifies (sla.yaml: may_requalify: false)")
    elif handed_back is not None:
        out.print(
            f"handed back to sales on {handed_back:%Y-%m-%d %H:%M} UTC "
            f"(now {label(stage)}): see drip leads list --requalified"
        )
    elif why.ready:
        out.print("ready for sales: it requalifies on its next engagement event")
