"""The pure side of `drip status` per campaign: states, lead time zones, and relative times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dripengine.reports.campaign_status import Group, assess
from dripengine.reports.timespan import relative
from dripengine.storage.pauses import Pause
from tests.factories import campaign

FRIDAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, 19:00 in Tokyo
WINBACK = campaign("winback", 10, ["sql"], [])  # Mon-Thu 09:00-17:00 Europe/Berlin


@pytest.mark.parametrize(
    ("delta", "said"),
    [
        (timedelta(0), "now"),
        (timedelta(seconds=42), "in 42 s"),
        (timedelta(hours=2, minutes=10, seconds=59), "in 2 h 10 min"),
        (timedelta(minutes=59, seconds=59), "in 59 min"),  # never rounded up to "1 h"
        (timedelta(days=3, hours=4, minutes=5), "in 3 d 4 h"),
        (timedelta(days=2, minutes=10), "in 2 d"),  # "2 d 10 min" would skip the hours
        (-timedelta(hours=5), "5 h ago"),
    ],
)
def test_relative_time_in_the_two_largest_units(delta: timedelta, said: str) -> None:
    assert relative(FRIDAY + delta, FRIDAY) == said


def test_a_lead_in_its_own_window_is_sent_while_the_campaigns_zone_is_closed() -> None:
    """Judged like the dispatcher: in the lead's zone, the campaign's when the lead has none."""
    groups = [
        Group("winback", None, 2, 2, None),  # Berlin: Friday, closed
        Group("winback", "Pacific/Honolulu", 1, 1, None),
        Group("winback", "America/Los_Angeles", 3, 1, FRIDAY + timedelta(days=4)),
    ]
    [state] = assess(groups, [WINBACK], [], FRIDAY - timedelta(hours=8))  # 02:00 UTC Friday
    # 02:00 UTC Friday: Friday 03:00 in Berlin and Thursday 18:00 in Los Angeles (closed),
    # Thursday 16:00 in Honolulu (open)
    assert (state.active, state.due_now, state.sendable_now) == (6, 4, 1)
    assert state.state == "sending" and state.reason == "1 due now: the next `drip run` sends them"
    assert state.window_open is False  # in the campaign's own zone


def test_closed_everywhere_names_the_earliest_opening_among_the_leads_zones() -> None:
    groups = [
        Group("winback", None, 1, 1, None),
        Group("winback", "Asia/Tokyo", 1, 1, None),
    ]
    saturday = FRIDAY + timedelta(days=1)
    [state] = assess(groups, [WINBACK], [], saturday)
    assert state.state == "window_closed"
    # Monday 09:00 in Tokyo is Monday 01:00 in Berlin: the first lead to get its email
    assert state.window_opens_at == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert state.reason.endswith("it opens Mon 2026-11-30 01:00 CET (in 1 d 14 h)")


def test_each_state_and_the_ids_only_the_database_knows() -> None:
    other = campaign("nurture", 5, ["mql"], [])
    groups = [Group("winback", None, 1, 1, None), Group("retired", None, 4, 0, FRIDAY)]
    pause = Pause("winback", "complaint rate 0.40% (2 of 500 sent) is over 0.10%", FRIDAY)
    later = FRIDAY + timedelta(days=4)  # Tuesday: the window is open
    states = {s.campaign_id: s for s in assess(groups, [WINBACK, other], [pause], later)}
    assert list(states) == ["nurture", "winback", "retired"]  # by priority, then unknown ids
    assert states["nurture"].state == "no_active"
    assert states["winback"].state == "paused" and states["winback"].sendable_now == 0
    assert "`drip campaigns resume winback`" in states["winback"].reason
    assert states["retired"].state == "unknown_campaign"
    assert "ends its 4 enrolment(s)" in states["retired"].reason
    # the campaign files did not load: no window to judge, the database's ids still listed
    unloaded = {s.campaign_id: s.state for s in assess(groups, None, [], later)}
    assert unloaded == {"retired": "waiting", "winback": "not_loaded"}
