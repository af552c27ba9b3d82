"""The campaign models: defaults, helpers, and the checks that span several fields."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dripengine.campaigns import Campaign, SendWindow, Step
from dripengine.campaigns.schema import CampaignProblems, format_loc


def step(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "wait": "1d", "template": f"t/{step_id}.mjml", "subject": "Hi"} | extra


def campaign_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "demo",
        "name": "Demo",
        "audience": {"stages": ["sql"]},
        "send": {"from": "Acme Growth Team <hello@acme.example>"},
        "tracks": {"cold": {"min_score": 0, "steps": [step("a"), step("b")]}},
    }
    return data | overrides


def problems(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every (location, message) pydantic reports, with cross-field problems expanded."""
    with pytest.raises(ValidationError) as caught:
        Campaign.model_validate(data)
    found: list[tuple[tuple[str | int, ...], str]] = []
    for error in caught.value.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, CampaignProblems):
            found += [((*error["loc"], *loc), msg) for loc, msg in cause.problems]
        else:
            found.append((tuple(error["loc"]), error["msg"]))
    return found


def test_defaults_are_the_documented_ones() -> None:
    campaign = Campaign.model_validate(campaign_data())
    assert campaign.version == 1
    assert campaign.priority == 100
    assert campaign.description is None
    assert campaign.audience.reasons == []
    assert campaign.audience.attributes == {}
    assert campaign.reentry.policy == "restart"
    assert campaign.reentry.cooldown_days == 0
    assert campaign.reentry.max_recycles is None
    assert campaign.send.timezone == "UTC"
    assert campaign.send.reply_to is None
    assert campaign.send.window == SendWindow(days=[0, 1, 2, 3, 4], start=time(9), end=time(17))
    assert campaign.exit.on == ["replied", "requalified", "unsubscribed", "bounced", "complained"]
    assert campaign.exit.after_days is None


def test_values_are_parsed_into_python_types() -> None:
    data = campaign_data()
    data["send"]["window"] = {"days": ["Mon", "wednesday", "sun"], "start": "8:30", "end": "18:00"}
    data["tracks"]["cold"]["steps"][0]["wait"] = "1d12h"
    campaign = Campaign.model_validate(data)
    assert campaign.send.window.days == [0, 2, 6]
    assert campaign.send.window.start == time(8, 30)
    assert campaign.tracks["cold"].steps[0].wait == timedelta(hours=36)
    assert campaign.send.sender_name == "Acme Growth Team"
    assert campaign.send.sender_email == "hello@acme.example"


def test_python_callers_can_build_models_directly() -> None:
    window = SendWindow(days=[0, 1], start=time(10), end=time(12))
    assert window.days == [0, 1]
    built = Step(id="x", wait=timedelta(hours=2), template="a/x.mjml", subject="S")
    assert built.wait == timedelta(hours=2)


def test_models_are_frozen() -> None:
    campaign = Campaign.model_validate(campaign_data())
    with pytest.raises(ValidationError):
        campaign.priority = 3  # type: ignore[misc]


def test_tracks_keep_file_order_and_helpers_find_steps() -> None:
    data = campaign_data(
        tracks={
            "cold": {"min_score": 0, "steps": [step("a"), step("b")]},
            "warm": {"min_score": 30, "steps": [step("c")]},
            "hot": {"min_score": 60.5, "steps": [step("d")]},
        }
    )
    campaign = Campaign.model_validate(data)
    assert list(campaign.tracks) == ["cold", "warm", "hot"]
    assert [(t, s.id) for t, s in campaign.all_steps()] == [
        ("cold", "a"),
        ("cold", "b"),
        ("warm", "c"),
        ("hot", "d"),
    ]
    assert campaign.step("c").template == "t/c.mjml"
    with pytest.raises(KeyError):
        campaign.step("nope")
    assert campaign.track_for_score(0)[0] == "cold"
    assert campaign.track_for_score(29.99)[0] == "cold"
    assert campaign.track_for_score(30)[0] == "warm"
    assert campaign.track_for_score(60.4)[0] == "warm"
    assert campaign.track_for_score(60.5)[0] == "hot"
    assert campaign.track_for_score(1000)[0] == "hot"
    assert campaign.track_for_score(-5)[0] == "cold"


@given(
    bands=st.lists(st.integers(1, 200), max_size=4, unique=True).map(sorted),
    score=st.floats(min_value=-50, max_value=300, allow_nan=False),
)
def test_track_for_score_picks_the_highest_band_at_or_below(bands: list[int], score: float) -> None:
    starts = [0, *bands]
    tracks = {f"t{i}": {"min_score": s, "steps": [step(f"s{i}")]} for i, s in enumerate(starts)}
    campaign = Campaign.model_validate(campaign_data(tracks=tracks))
    _, chosen = campaign.track_for_score(score)
    expected = max((s for s in starts if s <= score), default=0)
    assert chosen.min_score == expected


def test_exit_rules_always_honour_suppression_events() -> None:
    campaign = Campaign.model_validate(campaign_data(exit={"on": ["replied"]}))
    assert campaign.exit.exits_on("replied")
    assert not campaign.exit.exits_on("requalified")
    for event in ("unsubscribed", "bounced", "complained"):
        assert campaign.exit.exits_on(event)


def test_json_dump_uses_the_file_spelling() -> None:
    data = campaign_data()
    data["tracks"]["cold"]["steps"][0]["wait"] = "36h"
    dumped = Campaign.model_validate(data).model_dump(mode="json", by_alias=True)
    assert dumped["send"]["from"] == "Acme Growth Team <hello@acme.example>"
    assert dumped["send"]["window"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }
    assert dumped["tracks"]["cold"]["steps"][0]["wait"] == "36h"
    assert dumped["tracks"]["cold"]["min_score"] == 0
    assert isinstance(dumped["tracks"]["cold"]["min_score"], int)


def test_python_dump_keeps_python_types() -> None:
    dumped = Campaign.model_validate(campaign_data()).model_dump()
    assert dumped["tracks"]["cold"]["steps"][0]["wait"] == timedelta(days=1)
    assert dumped["send"]["window"]["start"] == time(9)


@pytest.mark.parametrize(
    ("field", "value"),
    [("version", True), ("priority", "10"), ("version", 0), ("name", "  ")],
)
def test_scalars_are_strict(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Campaign.model_validate(campaign_data(**{field: value}))


def test_first_track_must_start_at_zero() -> None:
    data = campaign_data(tracks={"warm": {"min_score": 30, "steps": [step("a")]}})
    assert problems(data) == [
        (("tracks", "warm", "min_score"), "the first track must start at 0, not 30")
    ]


def test_bands_must_be_distinct_and_ascending() -> None:
    data = campaign_data(
        tracks={
            "cold": {"min_score": 0, "steps": [step("a")]},
            "hot": {"min_score": 60, "steps": [step("b")]},
            "warm": {"min_score": 30, "steps": [step("c")]},
            "warmer": {"min_score": 30, "steps": [step("d")]},
        }
    )
    assert problems(data) == [
        (
            ("tracks", "warm", "min_score"),
            '30 is below track "hot" (60) listed before it; list tracks from the lowest band up',
        ),
        (
            ("tracks", "warmer", "min_score"),
            '30 is already the min_score of track "warm"; each track starts its own band',
        ),
    ]


def test_step_ids_are_unique_across_tracks() -> None:
    data = campaign_data(
        tracks={
            "cold": {"min_score": 0, "steps": [step("a")]},
            "warm": {"min_score": 30, "steps": [step("a")]},
        }
    )
    assert problems(data) == [
        (
            ("tracks", "warm", "steps", 0, "id"),
            '"a" is already the id of tracks.cold.steps[0]; step ids must be unique',
        )
    ]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("c", '"c" comes later in track "cold"; name an earlier step (earlier steps: a)'),
        ("b", 'a step cannot depend on itself ("b"); name an earlier step'),
        ("x", 'unknown step "x"; name an earlier step of this track (earlier steps: a)'),
        (
            "w",
            '"w" is in track "warm"; a condition can only name an earlier step of the same '
            "track (earlier steps: a)",
        ),
    ],
)
def test_a_condition_names_an_earlier_step_of_its_track(target: str, message: str) -> None:
    data = campaign_data(
        tracks={
            "warm": {"min_score": 0, "steps": [step("w")]},
            "cold": {
                "min_score": 10,
                "steps": [
                    step("a"),
                    step("b", condition={"event": "opened", "step": target}),
                    step("c"),
                ],
            },
        }
    )
    assert problems(data) == [(("tracks", "cold", "steps", 1, "condition", "step"), message)]


def test_a_condition_without_a_step_cannot_sit_on_the_first_step() -> None:
    data = campaign_data(
        tracks={"cold": {"min_score": 0, "steps": [step("a", condition={"event": "clicked"})]}}
    )
    assert problems(data) == [
        (
            ("tracks", "cold", "steps", 0, "condition"),
            "the first step of a track has no earlier step to look at; remove the condition",
        )
    ]


def test_a_valid_condition_is_kept() -> None:
    data = campaign_data()
    data["tracks"]["cold"]["steps"][1]["condition"] = {"event": "not_opened", "step": "a"}
    condition = Campaign.model_validate(data).step("b").condition
    assert condition is not None
    assert (condition.event, condition.step) == ("not_opened", "a")


def test_track_names_are_slugs() -> None:
    data = campaign_data(tracks={"Cold Leads": {"min_score": 0, "steps": [step("a")]}})
    assert problems(data) == [
        (("tracks", "Cold Leads"), '"Cold Leads" is not a slug (use e.g. cold, warm, hot)')
    ]


def test_attribute_filters_take_values_or_lists_of_values() -> None:
    data = campaign_data(
        audience={
            "stages": ["sql"],
            "attributes": {"country": [], "source": {"a": 1}, "tier": ["a", None]},
        }
    )
    assert problems(data) == [
        (("audience", "attributes", "country"), "an empty list matches no lead; remove it"),
        (
            ("audience", "attributes", "source"),
            "expected a value or a list of values (text, number, true/false)",
        ),
        (
            ("audience", "attributes", "tier", 1),
            "expected a value or a list of values (text, number, true/false)",
        ),
    ]


@pytest.mark.parametrize(
    ("template", "ok"),
    [("a/b.mjml", True), ("/etc/passwd", False), ("../secret.mjml", False), ("a/../../b", False)],
)
def test_templates_stay_inside_the_templates_folder(template: str, ok: bool) -> None:
    data = campaign_data()
    data["tracks"]["cold"]["steps"][0]["template"] = template
    if ok:
        Campaign.model_validate(data)
    else:
        assert problems(data)[0][1].endswith(
            "must be a path inside templates/ (e.g. lost-sql/checkin.mjml)"
        )


def test_format_loc() -> None:
    assert format_loc(("tracks", "cold", "steps", 2, "wait")) == "tracks.cold.steps[2].wait"
    assert format_loc(("id",)) == "id"
    assert format_loc(()) == ""


@pytest.mark.parametrize(
    ("sender", "message"),
    [
        (
            "Acme, Inc. <hello@acme.example>",
            '"Acme, Inc. <hello@acme.example>" is more than one address (a display name with a '
            """comma needs double quotes: '"Acme, Inc." <hello@acme.example>')""",
        ),
        (
            "Acme Team",
            '"Acme Team" is not a valid email address: An email address must have an @-sign.',
        ),
        (
            "",
            '"" is not an email address (use "Name <address@example.com>" or address@example.com)',
        ),
    ],
)
def test_sender_addresses_are_checked(sender: str, message: str) -> None:
    data = campaign_data(send={"from": "hello@acme.example", "reply_to": sender})
    assert problems(data) == [(("send", "reply_to"), f"Value error, {message}")]


def test_a_quoted_display_name_with_a_comma_is_fine() -> None:
    data = campaign_data(send={"from": '"Acme, Inc." <hello@acme.example>'})
    assert Campaign.model_validate(data).send.sender_email == "hello@acme.example"
