"""``--since``: spans back from now and ISO dates; anything else names the accepted forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dripengine.reports.since import parse_since

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("2w", NOW - timedelta(weeks=2)),
        (" 1d12h ", NOW - timedelta(days=1, hours=12)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:30", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:00+01:00", datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["7 days", "last week", "0", "2026-13-01", "", "d7"])
def test_a_wrong_form_names_the_accepted_ones(text: str) -> None:
    with pytest.raises(ValueError, match=r"7d, 12h or 2w.*ISO date"):
        parse_since(text, NOW)
