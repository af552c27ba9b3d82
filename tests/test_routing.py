"""Routing: the first campaign by (priority, id) whose audience takes the recycled lead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.campaigns import (
    Campaign,
    LeadFacts,
    audience_matches,
    explain_no_match,
    load_campaigns,
    route,
    routing_order,
)

SKELETON = Path(__file__).resolve().parent.parent / "dripengine" / "skeleton"


def make(
    campaign_id: str,
    *,
    stages: list[str],
    reasons: list[str] | None = None,
    attributes: dict[str, Any] | None = None,
    priority: int = 100,
) -> Campaign:
    return Campaign.model_validate(
        {
            "id": campaign_id,
            "name": campaign_id.title(),
            "priority": priority,
            "audience": {
                "stages": stages,
                "reasons": reasons or [],
                "attributes": attributes or {},
            },
            "send": {"from": "hello@acme.example"},
            "tracks": {
                "cold": {
                    "min_score": 0,
                    "steps": [
                        {"id": "a", "wait": "1d", "template": "a.mjml", "subject": "Hi"},
                    ],
                }
            },
        }
    )


def facts(stage: str = "sql", reason: str = "no_budget", **fields: Any) -> LeadFacts:
    return LeadFacts(from_stage=stage, reason=reason, fields=fields)


def test_lower_priority_number_wins() -> None:
    late = make("late", stages=["sql"], priority=50)
    early = make("early", stages=["sql"], priority=5)
    assert route([late, early], facts()) is early


def test_ties_are_broken_by_id() -> None:
    beta = make("beta", stages=["sql"], priority=1)
    alpha = make("alpha", stages=["sql"], priority=1)
    assert route([beta, alpha], facts()) is alpha
    assert [c.id for c in routing_order([beta, alpha])] == ["alpha", "beta"]


def test_stage_must_be_listed() -> None:
    mql_only = make("mql-only", stages=["mql", "sal"])
    assert route([mql_only], facts(stage="sql")) is None
    assert route([mql_only], facts(stage="sal")) is mql_only


def test_reasons_empty_means_any_reason() -> None:
    picky = make("picky", stages=["sql"], reasons=["no_budget"], priority=1)
    catch_all = make("catch-all", stages=["sql"], priority=2)
    assert route([picky, catch_all], facts(reason="no_budget")) is picky
    assert route([picky, catch_all], facts(reason="went_silent")) is catch_all


def test_attribute_filters_all_must_match_ignoring_case() -> None:
    dach = make(
        "dach",
        stages=["sql"],
        attributes={"country": ["DE", "AT", "CH"], "source": "webinar"},
    )
    assert audience_matches(dach.audience, facts(country="de", source="Webinar "))
    assert not audience_matches(dach.audience, facts(country="FR", source="webinar"))
    assert not audience_matches(dach.audience, facts(country="DE", source="ads"))
    assert not audience_matches(dach.audience, facts(country="DE"))  # source missing
    assert not audience_matches(dach.audience, facts(country=None, source="webinar"))


def test_attribute_values_compare_as_text() -> None:
    big = make("big", stages=["sql"], attributes={"employees": 500, "enterprise": True})
    assert audience_matches(big.audience, facts(employees="500", enterprise=True))
    assert audience_matches(big.audience, facts(employees=500.0, enterprise="true"))
    assert not audience_matches(big.audience, facts(employees=50, enterprise=True))
    assert not audience_matches(big.audience, facts(employees=500, enterprise=1))


def test_a_list_valued_lead_field_matches_if_any_item_does() -> None:
    tagged = make("tagged", stages=["sql"], attributes={"tags": "vip"})
    assert audience_matches(tagged.audience, facts(tags=["new", "VIP"]))
    assert not audience_matches(tagged.audience, facts(tags=["new"]))


def test_no_campaigns_at_all() -> None:
    assert route([], facts()) is None
    assert explain_no_match([], facts()) == "no campaigns are loaded"


@pytest.mark.parametrize(
    ("lead", "message"),
    [
        (facts(stage="opportunity"), 'no campaign takes stage "opportunity"'),
        (
            facts(stage="mql", reason="not_a_fit"),
            'no campaign takes stage "mql" with reason "not_a_fit"',
        ),
        (
            facts(stage="sql", reason="no_budget", country="US"),
            'no campaign for stage "sql" with reason "no_budget" matches the lead\'s attributes: '
            '"dach" wants country DE, AT, CH, the lead has "US"',
        ),
        (
            facts(stage="sql", reason="no_budget"),
            'no campaign for stage "sql" with reason "no_budget" matches the lead\'s attributes: '
            '"dach" wants country DE, AT, CH, the lead has none',
        ),
        (facts(stage="mql", reason="bad_timing"), 'campaign "nurture" matches'),
    ],
)
def test_explain_no_match_says_why_in_one_line(lead: LeadFacts, message: str) -> None:
    campaigns = [
        make("nurture", stages=["mql"], reasons=["bad_timing"]),
        make("dach", stages=["sql"], attributes={"country": ["DE", "AT", "CH"]}),
    ]
    assert explain_no_match(campaigns, lead) == message


def test_explain_counts_the_other_campaigns_that_want_other_attributes() -> None:
    campaigns = [
        make("dach", stages=["sql"], attributes={"country": ["DE", "AT"]}, priority=1),
        make("nordics", stages=["sql"], attributes={"country": "SE"}, priority=2),
    ]
    assert explain_no_match(campaigns, facts(country="US")).startswith(
        'no campaign for stage "sql" with reason "no_budget" matches the lead\'s attributes: '
        '"dach" (and 1 more) wants country DE, AT'
    )


@pytest.mark.parametrize(
    ("stage", "reason", "expected"),
    [
        ("mql", "bad_timing", "rejected-mql-nurture"),
        ("sal", "no_need_yet", "rejected-mql-nurture"),
        ("sql", "chose_competitor", "lost-sql-winback"),
        ("opportunity", "no_budget", "lost-sql-winback"),
        ("sal", "went_silent", "rejected-mql-nurture"),
        ("mql", "not_a_fit", None),
        ("sql", "no_need_yet", None),
    ],
)
def test_the_example_campaigns_route_as_documented(
    stage: str, reason: str, expected: str | None
) -> None:
    campaigns = load_campaigns(SKELETON / "campaigns")
    chosen = route(campaigns, facts(stage=stage, reason=reason))
    assert (chosen.id if chosen else None) == expected


audiences = st.fixed_dictionaries(
    {
        "stages": st.lists(
            st.sampled_from(["mql", "sal", "sql", "opportunity"]), min_size=1, unique=True
        ),
        "reasons": st.lists(
            st.sampled_from(["no_budget", "bad_timing", "went_silent"]), unique=True
        ),
        "priority": st.integers(0, 3),
        "country": st.none() | st.sampled_from(["DE", "US"]),
    }
)


@given(
    specs=st.lists(audiences, max_size=6),
    stage=st.sampled_from(["mql", "sal", "sql", "opportunity"]),
    reason=st.sampled_from(["no_budget", "bad_timing", "went_silent"]),
    country=st.sampled_from(["de", "us", "fr"]),
)
def test_route_is_the_first_matching_campaign_in_priority_order(
    specs: list[dict[str, Any]], stage: str, reason: str, country: str
) -> None:
    campaigns = [
        make(
            f"c{i}",
            stages=spec["stages"],
            reasons=spec["reasons"],
            priority=spec["priority"],
            attributes={"country": spec["country"]} if spec["country"] else {},
        )
        for i, spec in enumerate(specs)
    ]
    lead = facts(stage=stage, reason=reason, country=country)
    matching = [
        (c.priority, c.id)
        for c, spec in zip(campaigns, specs, strict=True)
        if stage in spec["stages"]
        and (not spec["reasons"] or reason in spec["reasons"])
        and (spec["country"] is None or spec["country"].lower() == country)
    ]
    chosen = route(campaigns, lead)
    if matching:
        assert chosen is not None
        assert (chosen.priority, chosen.id) == min(matching)
    else:
        assert chosen is None
        assert not explain_no_match(campaigns, lead).startswith("campaign ")
