"""parse_duration / format_duration: the spellings campaign files use for waits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.campaigns.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", timedelta(days=3)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m", timedelta(weeks=1, days=2, hours=3, minutes=4)),
        ("0", timedelta(0)),
        ("0d", timedelta(0)),
        (" 3d ", timedelta(days=3)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parses_the_documented_spellings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["3 dayz", "", "3", "d", "1d1d", "12h1d", "-1d", "1.5d", "3D", "3s", "1d 12h"]
)
def test_rejects_anything_else_and_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f'"{text}" is not a duration (use 3d, 12h, 30m)'


def test_a_bare_number_is_refused_with_the_unit_to_add() -> None:
    with pytest.raises(ValueError, match=r'^3 is not a duration: add the unit, e\.g\. "3d"'):
        parse_duration(3)  # type: ignore[arg-type]


def test_a_bare_zero_means_no_wait() -> None:
    assert parse_duration(0) == timedelta(0)  # type: ignore[arg-type]


def test_true_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="True is not a duration"):
        parse_duration(True)  # type: ignore[arg-type]


def test_an_absurdly_long_duration_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999d")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=1), "1d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(weeks=2), "14d"),
        (timedelta(0), "0"),
    ],
)
def test_formats_in_the_largest_whole_unit(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("value", [timedelta(seconds=90), timedelta(days=-1)])
def test_format_refuses_what_parse_cannot_read(value: timedelta) -> None:
    with pytest.raises(ValueError):
        format_duration(value)


@given(st.integers(min_value=0, max_value=10_000_000))
def test_format_then_parse_round_trips(minutes: int) -> None:
    value = timedelta(minutes=minutes)
    assert parse_duration(format_duration(value)) == value


@given(
    st.fixed_dictionaries(
        {unit: st.one_of(st.none(), st.integers(0, 500)) for unit in ("w", "d", "h", "m")}
    ).filter(lambda parts: any(v is not None for v in parts.values()))
)
def test_every_unit_combination_adds_up(parts: dict[str, int | None]) -> None:
    text = "".join(f"{parts[unit]}{unit}" for unit in "wdhm" if parts[unit] is not None)
    sizes = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}
    expected = sum((amount or 0) * sizes[unit] for unit, amount in parts.items())
    assert parse_duration(text) == timedelta(minutes=expected)
