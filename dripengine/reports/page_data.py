"""What the report shows, read once from the database: the same :mod:`dripengine.reports.stats` views as
``drip stats``, shaped as plain values for the page's tables and charts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dripengine.reports import holdout, stats
from dripengine.reports.colours import SERIES, campaign_colours
from dripengine.reports.sla_report import SlaSummary, collect_sla
from dripengine.storage import Engine

if TYPE_CHECKING:
    from dripengine.funnel.sla import SLA


@dataclass(frozen=True)
class ReportData:
    window: stats.Window
    campaign: str | None
    campaigns: list[stats.Row]  # by campaign: the emails
    funnel_by_campaign: list[stats.Row]  # the closed loop per campaign the recycle went into
    funnel_by_reason: list[stats.Row]
    weeks: list[stats.Row]
    steps: list[stats.Row]
    sla: SlaSummary | None = None  # the SLA's clocks (None: no SLA given, or it sets none)
    lifts: dict[str, dict[str, Any]] = field(default_factory=dict)  # campaign -> holdout test

    @property
    def empty(self) -> bool:
        return not (self.campaigns or self.funnel_by_reason or self.weeks)

    def colours(self) -> dict[str, str]:
        """Every campaign on the page with its colour, the same on every chart and table."""
        rows = (*self.campaigns, *self.funnel_by_campaign, *self.steps)
        return campaign_colours(row.key["campaign"] for row in rows)

    def charts(self) -> dict[str, Any]:
        """The charts' data: labels and series, nothing else (the page's script draws them)."""
        stages = list(stats.FUNNEL_COUNTS)
        steps: dict[str, dict[str, list[Any]]] = {}
        for row in self.steps:
            chart = steps.setdefault(row.key["campaign"], {"labels": [], "sent": [], "reach": []})
            track = row.key["track"]
            chart["labels"].append(f"{track}: {row.key['step']}" if track else row.key["step"])
            chart["sent"].append(row.counts["sent"])
            chart["reach"].append(row.rate("reach_rate"))
        return {
            "colours": self.colours(),
            "series": list(SERIES),
            "funnel": {
                "stages": stages,
                "campaigns": [
                    {"name": r.key["campaign"], "counts": [r.counts[s] for s in stages]}
                    for r in self.funnel_by_campaign
                ],
            },
            "reasons": {
                "labels": [r.key["reason"] for r in self.funnel_by_reason],
                "requalification_rate": [
                    r.rate("requalification_rate") for r in self.funnel_by_reason
                ],
                "acceptance_rate": [r.rate("acceptance_rate") for r in self.funnel_by_reason],
                "recycled": [r.counts["recycled"] for r in self.funnel_by_reason],
            },
            "weeks": {
                "labels": [r.key["week"] for r in self.weeks],
                "sent": [r.counts["sent"] for r in self.weeks],
                "human_opens": [r.counts["human_opens"] for r in self.weeks],
                "machine_opens": [r.counts["machine_opens"] for r in self.weeks],
                "clicks": [r.counts["clicks"] for r in self.weeks],
            },
            "steps": [{"campaign": name, **chart} for name, chart in steps.items()],
        }


def collect(
    engine: Engine, window: stats.Window, campaign: str | None = None, sla: SLA | None = None
) -> ReportData:
    """Every view the report needs, in one connection (one consistent read on PostgreSQL's
    default isolation per query; SQLite's WAL gives each query its snapshot)."""
    with engine.connect() as connection:
        emails = stats.email_views(connection, window, campaign)  # one pass for all three
        return ReportData(
            window=window,
            campaign=campaign,
            campaigns=emails.campaigns,
            funnel_by_campaign=stats.funnel(connection, window, "campaign", campaign),
            funnel_by_reason=stats.funnel(connection, window, "reason", campaign),
            weeks=emails.weeks,
            steps=emails.steps,
            sla=collect_sla(engine, sla, window.since, window.now, campaign) if sla else None,
            lifts=holdout.lift_by_campaign(connection, window, campaign),
        )
