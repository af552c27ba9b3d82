"""dripengine.scoring.rules, the pure rules: points per event, the daily caps, link-scanner clicks, lazy
decay, the fit grade and the requalification decision. No database: tests/test_ingest.py runs the
same rules end to end, tests/test_explain.py the score's breakdown."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.config import FitRule, ScoringSettings
from dripengine.scoring.rules import (
    FIT_FACETS,
    ScoringRules,
    add,
    decayed,
    fit_at_least,
    fit_grade,
    requalifies,
    rules_from_settings,
)

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)

# --- points per event -----------------------------------------------------------------------------


def test_points_and_machine_events() -> None:
    rules = ScoringRules()
    assert rules.points("click", tag="pricing") == 20
    assert rules.points("click", tag="pricing", machine=True) == 0
    assert rules.points("open") == 1
    assert rules.points("unknown_event") == 0


def test_a_link_tag_adds_to_clicks_only_and_an_unknown_tag_adds_nothing() -> None:
    rules = ScoringRules()
    assert rules.points("click", tag="no-such-tag") == 5
    assert rules.points("click", tag="") == 5
    assert rules.points("open", tag="pricing") == 1  # an open carries no link
    assert rules.points("form_fill", tag="demo") == 15


# --- daily caps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned_today", "allowed"),
    [(0, 1.0), (2, 1.0), (2.5, 0.5), (3, 0.0), (7, 0.0)],  # the open cap is 3 a day
)
def test_the_cap_cuts_what_is_over_the_days_limit_and_never_takes_back(
    earned_today: float, allowed: float
) -> None:
    assert ScoringRules().cap("open", 1, earned_today) == allowed


def test_an_event_without_a_cap_and_a_negative_change_pass_whole() -> None:
    rules = ScoringRules()
    assert rules.cap("reply", 25, earned_today=1000) == 25
    assert rules.cap("open", -4, earned_today=3) == -4  # a penalty is not a gain to limit


# --- link scanners ---------------------------------------------------------------------------------


def test_a_click_within_the_scanner_seconds_of_delivery_is_a_scanner() -> None:
    rules = ScoringRules()  # 10 s
    assert rules.is_scanner_click(T0 + timedelta(seconds=9.9), delivered_at=T0)
    assert not rules.is_scanner_click(T0 + timedelta(seconds=10), delivered_at=T0)
    assert not rules.is_scanner_click(T0 + timedelta(hours=2), delivered_at=T0)


def test_no_delivery_time_or_a_zero_window_never_makes_a_scanner() -> None:
    assert not ScoringRules().is_scanner_click(T0, delivered_at=None)
    assert not ScoringRules(scanner_seconds=0).is_scanner_click(T0, delivered_at=T0)


# --- decay -----------------------------------------------------------------------------------------


def test_decay_halves_per_half_life() -> None:
    assert decayed(80, T0, T0 + timedelta(days=45), 45) == pytest.approx(40)
    assert decayed(80, T0, T0 - timedelta(days=1), 45) == 80
    assert add(80, T0, T0 + timedelta(days=90), 10, ScoringRules()) == pytest.approx(30)


def test_decay_is_continuous_not_stepped_per_day() -> None:
    assert decayed(80, T0, T0 + timedelta(days=90), 45) == pytest.approx(20)
    assert decayed(80, T0, T0 + timedelta(hours=12), 45) == pytest.approx(80 * 0.5 ** (0.5 / 45))


def test_nothing_to_decay_from_is_left_as_it_is() -> None:
    later = T0 + timedelta(days=400)
    assert decayed(50, None, later, 45) == 50  # never computed: no time to decay from
    assert decayed(-5, T0, later, 45) == -5  # decay pulls a gain down, never a debt up
    assert decayed(50, T0, later, 0) == 50  # no half-life configured: no decay


@given(
    score=st.floats(min_value=0, max_value=1e6),
    days=st.floats(min_value=0, max_value=3650),
    half_life=st.floats(min_value=0.1, max_value=1000),
)
def test_decay_never_raises_a_score(score: float, days: float, half_life: float) -> None:
    assert decayed(score, T0, T0 + timedelta(days=days), half_life) <= score


def test_adding_decays_first_and_never_stores_below_zero() -> None:
    rules = ScoringRules()
    assert add(10, None, T0, 5, rules) == 15
    assert add(2, T0, T0, -10, rules) == 0
    assert add(40, T0, T0 + timedelta(days=45), -10, rules) == pytest.approx(10)


# --- [scoring] in drip.toml ------------------------------------------------------------------------


def test_settings_are_merged_over_the_defaults_not_instead_of_them() -> None:
    rules = rules_from_settings(
        ScoringSettings(
            half_life_days=30,
            event_points={"open": 0, "webinar_attended": 12},
            tag_points={"pricing": 40},
            daily_caps={"click": 10},
            scanner_seconds=0,
        )
    )
    assert rules.points("open") == 0
    assert rules.points("webinar_attended") == 12
    assert rules.points("reply") == 25  # a default nobody overrode
    assert rules.points("click", tag="pricing") == 45
    assert rules.points("click", tag="demo") == 25
    assert rules.cap("click", 5, earned_today=8) == 2
    assert rules.cap("open", 5, earned_today=0) == 3  # the default open cap stays
    assert rules.half_life_days == 30
    assert not rules.is_scanner_click(T0, delivered_at=T0)


# --- fit ---------------------------------------------------------------------------------------------

ATTRIBUTES = {"pain_points": "spreadsheets", "use_case": "nurture"}
FULL: dict[str, Any] = {
    "first_name": "Jane",
    "company": "Acme Corp",
    "title": "Engineer",
    "industry": "Software",
    "employees": "12",
    "attributes": ATTRIBUTES,
}


def test_an_empty_profile_is_a_d_missing_every_facet_in_order() -> None:
    fit = fit_grade({})
    assert (fit.grade, fit.points, fit.matched) == ("D", 0, ())
    assert fit.missing == tuple(facet for facet, _, _ in FIT_FACETS)


def test_a_complete_profile_alone_reaches_a() -> None:
    fit = fit_grade(FULL)
    assert (fit.grade, fit.points, fit.missing) == ("A", 80, ())


@pytest.mark.parametrize(
    ("drop", "points", "grade"),
    [
        ((), 80, "A"),
        (("pain_points",), 70, "B"),
        (("pain_points", "use_case"), 60, "B"),
        (("pain_points", "use_case", "employees"), 50, "C"),
        (("pain_points", "use_case", "employees", "industry"), 40, "C"),
        (("pain_points", "use_case", "employees", "industry", "first_name"), 30, "D"),
    ],
)
def test_grade_floors(drop: tuple[str, ...], points: float, grade: str) -> None:
    lead: dict[str, Any] = {k: v for k, v in FULL.items() if k not in drop}
    lead["attributes"] = {k: v for k, v in ATTRIBUTES.items() if k not in drop}
    fit = fit_grade(lead)
    assert (fit.points, fit.grade) == (points, grade)


def test_a_facet_is_shown_by_any_of_its_fields_on_the_lead_or_in_its_attributes() -> None:
    assert "company size" not in fit_grade({"company_size": "51-200"}).missing
    assert "industry" not in fit_grade({"attributes": {"industry": "Retail"}}).missing
    # an empty column falls back to the attribute of the same name
    assert "company" not in fit_grade({"company": "", "attributes": {"company": "Acme"}}).missing


def test_empty_values_and_odd_attributes_show_nothing() -> None:
    fit = fit_grade({"company": "", "title": None, "attributes": ["not", "a", "mapping"]})
    assert {"company", "role"} <= set(fit.missing)
    assert fit.points == 0


def test_attribute_rules_match_by_value_substring_and_minimum_ignoring_case() -> None:
    rules = [
        FitRule(field="industry", values=["Software", "SaaS"], points=10),
        FitRule(field="title", contains=["head", "director"], points=10),
        FitRule(field="employees", min=50, points=10),
    ]
    hit = fit_grade(
        {"industry": "saas", "title": "Head of Growth", "attributes": {"employees": "1,200+"}},
        rules,
    )
    assert hit.matched == ("industry (+10)", "title (+10)", "employees (+10)")
    miss = fit_grade({"industry": "Saas tools", "title": "Engineer", "employees": "lots"}, rules)
    assert miss.matched == ()
    assert fit_grade({"employees": "49"}, rules).matched == ()
    assert fit_grade({"employees": 50}, rules).matched == (
        "employees (+10)",
    )  # at least: 50 counts


def test_a_rule_with_values_and_a_minimum_needs_both() -> None:
    rule = FitRule(field="employees", values=["500", "1000"], min=600, points=5)
    assert fit_grade({"employees": "1000"}, [rule]).matched == ("employees (+5)",)
    assert fit_grade({"employees": "500"}, [rule]).matched == ()  # listed, under the minimum
    assert fit_grade({"employees": "700"}, [rule]).matched == ()  # over the minimum, not listed


def test_a_negative_rule_lowers_the_grade() -> None:
    students = FitRule(field="industry", values=["education"], points=-30)
    fit = fit_grade({**FULL, "industry": "Education"}, [students])
    assert (fit.points, fit.grade, fit.matched) == (50, "C", ("industry (-30)",))


def test_fit_at_least_orders_a_best() -> None:
    assert fit_at_least("A", "B") and fit_at_least("B", "B")
    assert not fit_at_least("C", "B") and not fit_at_least("D", "C")


# --- requalification -------------------------------------------------------------------------------


def test_requalification_rule() -> None:
    assert requalifies(60, 60, reason_may_requalify=True)
    assert not requalifies(59.9, 60, reason_may_requalify=True)
    assert not requalifies(99, 60, reason_may_requalify=False)


def test_a_minimum_fit_holds_back_a_poor_fit_only_when_both_are_given() -> None:
    assert not requalifies(99, 60, reason_may_requalify=True, fit="C", min_fit="B")
    assert requalifies(60, 60, reason_may_requalify=True, fit="B", min_fit="B")
    assert requalifies(60, 60, reason_may_requalify=True, fit="D")  # no minimum set
    assert requalifies(60, 60, reason_may_requalify=True, min_fit="A")  # no grade known
