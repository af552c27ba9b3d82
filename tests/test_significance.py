"""campaigns.significance against the published worked examples (Newcombe 1998, table II)."""

from __future__ import annotations

import pytest

from dripengine.campaigns.significance import compare, wilson


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [
        ((56, 70, 48, 80), 0.0524, 0.3339),  # Newcombe's example (a), method 10
        ((9, 10, 3, 10), 0.1705, 0.8090),  # (b)
        ((6, 7, 2, 7), 0.0582, 0.8062),  # (c)
        ((5, 56, 0, 29), -0.0381, 0.1926),  # (d)
        ((0, 10, 0, 20), -0.1611, 0.2775),  # (e)
        ((0, 10, 0, 10), -0.2775, 0.2775),  # (f)
        ((10, 10, 0, 20), 0.6791, 1.0000),  # (g)
        ((10, 10, 0, 10), 0.6075, 1.0000),  # (h)
    ],
)
def test_the_difference_interval_is_newcombes_method_10(counts, low, high) -> None:
    result = compare(*counts)
    assert result.low == pytest.approx(low, abs=5e-5)
    assert result.high == pytest.approx(high, abs=5e-5)
    assert result.method == "newcombe-wilson"


def test_wilson_interval_of_a_textbook_case() -> None:
    # 81 of 263 (Newcombe 1998, single proportion paper): 0.2553 to 0.3662
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)


def test_the_z_test_p_value_and_significance() -> None:
    result = compare(56, 70, 48, 80)
    assert result.p_value == pytest.approx(0.00805, abs=5e-5)  # z = 2.649
    assert result.significant()
    assert not compare(5, 56, 0, 29).significant()
    assert compare(0, 0, 3, 10).difference is None  # an empty group compares to nothing
    assert not compare(0, 0, 3, 10).significant()


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="successes <= trials"):
        compare(11, 10, 0, 10)
    with pytest.raises(ValueError, match="between 0 and 1"):
        compare(1, 10, 0, 10, confidence=95)
