from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dripengine.authoring.simulate import SimLead, format_timeline, simulate
from dripengine.campaigns import load_campaigns
from dripengine.campaigns.window import in_window
from dripengine.cli.scaffold import SKELETON
from tests.test_sequence import make, step

START = datetime(2026, 11, 23, 10, tzinfo=UTC)
CAMPAIGNS = {c.id: c for c in load_campaigns(SKELETON / "campaigns")}


def test_no_engagement_sends_the_cold_track_inside_the_window() -> None:
    campaign = CAMPAIGNS["lost-sql-winback"]
    timeline = simulate(
        campaign,
        SimLead("jane@acme.example", timezone="America/New_York"),
        start=START,
        pattern="none",
        threshold=60,
    )
    sends = [e for e in timeline.entries if e.kind == "send"]
    assert [e.step for e in sends] == [s.id for s in campaign.tracks["cold"].steps]
    for entry in sends:
        assert in_window(entry.at, campaign.send.window, ZoneInfo("America/New_York"))
    assert timeline.outcome == "complete"
    opens = simulate(
        campaign, SimLead("jane@acme.example"), start=START, pattern="opens", threshold=60
    )
    assert opens.entries[-1].at == max(
        e.at for e in opens.entries
    )  # the end comes after the last open


def test_clicks_on_hot_links_warm_the_lead_and_requalify_it() -> None:
    campaign = make(
        cold={"min_score": 0, "steps": [step("c1", "1h"), step("c2", "1d"), step("c3", "1d")]},
        hot={"min_score": 40, "steps": [step("h1", "1d"), step("h2", "1d")]},
    )
    timeline = simulate(
        campaign,
        SimLead("a@acme.example"),
        start=START,
        pattern="clicks",
        threshold=60,
        tags_for=lambda s: ["pricing"],
    )
    kinds = [(e.kind, e.step) for e in timeline.entries if e.kind in ("send", "requalified")]
    # each click on a pricing link is worth 1 + 5 + 15; two of them reach the hot band, three requalify
    assert kinds[:3] == [("send", "c1"), ("send", "c2"), ("send", "h1")]
    assert timeline.outcome == "requalified"
    assert timeline.entries[-1].score is not None and timeline.entries[-1].score >= 60


def test_reply_exits_and_conditions_skip() -> None:
    campaign = make(
        cold={
            "min_score": 0,
            "steps": [
                step("a", "1h"),
                step("b", "1d", condition={"event": "clicked", "step": "a"}),
                step("c", "1d"),
            ],
        }
    )
    opens = simulate(
        campaign, SimLead("a@acme.example"), start=START, pattern="opens", threshold=60
    )
    assert [(e.kind, e.step) for e in opens.entries if e.kind in ("send", "skip")] == [
        ("send", "a"),
        ("skip", "b"),
        ("send", "c"),
    ]
    replied = simulate(
        campaign, SimLead("a@acme.example"), start=START, pattern="reply", threshold=999
    )
    assert replied.outcome == "exit" and "replied" in (replied.entries[-1].detail or "")


def test_time_limit_and_formatting() -> None:
    campaign = make(
        cold={"min_score": 0, "steps": [step("a", "1d"), step("b", "30d")]}, exit={"after_days": 10}
    )
    timeline = simulate(
        campaign,
        SimLead("a@acme.example", timezone="Europe/Berlin"),
        start=START,
        pattern="none",
        threshold=60,
        subject_for=lambda s: f"Hello {s.id}",
    )
    assert timeline.outcome == "exit"
    assert timeline.entries[-1].at == START + timedelta(days=10)
    lines = format_timeline(timeline)
    assert lines[0].startswith('"C" for a@acme.example, engagement: none, times in Europe/Berlin')
    assert any('send  [cold] a: "Hello a"' in line for line in lines)
    assert "EXIT: campaign time limit (10 days)" in lines[-1]
