"""Loading campaign files: every problem as one ``file:line: field: message`` line."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dripengine.campaigns import (
    Campaign,
    dump_campaign,
    load_campaign_file,
    load_campaigns,
    validate_campaigns,
)
from dripengine.exceptions import CampaignFileErrors
from dripengine.templates import TemplateEngine, sample_context
from dripengine.templates.context import sparse_context
from dripengine.templates.environment import NeedsDefault

REPO = Path(__file__).resolve().parent.parent
SKELETON = REPO / "dripengine" / "skeleton"
REASONS = {
    "bad_timing",
    "no_budget",
    "no_authority",
    "no_need_yet",
    "went_silent",
    "chose_competitor",
    "sla_no_decision",  # the SLA's own reason (issue 16)
}

# Line numbers matter in these tests: keep this text as it is.
VALID = """\
id: demo
name: Demo
priority: 5
audience:
  stages: [sql]
  reasons: [no_budget]
send:
  from: "Acme <hello@acme.example>"
  timezone: Europe/Berlin
  window:
    days: [mon, tue]
    start: "09:00"
    end: 17:00
tracks:
  cold:
    min_score: 0
    steps:
      - id: checkin
        wait: 1d
        template: lost-sql/checkin.mjml
        subject: Hello
      - id: nudge
        wait: 3d
        template: lost-sql/nudge.mjml
        subject: Again
exit:
  on: [replied, bounced]
"""


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    directory = tmp_path / "campaigns"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def errors_for(tmp_path: Path, text: str, **options: Any) -> list[str]:
    campaigns, errors = validate_campaigns(folder(tmp_path, {"x.yaml": text}), **options)
    assert campaigns == [] or not errors
    return errors


def edit(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


def test_a_valid_file_loads(tmp_path: Path) -> None:
    [campaign] = load_campaigns(folder(tmp_path, {"x.yaml": VALID}))
    assert campaign.id == "demo"
    assert campaign.send.window.end.hour == 17  # unquoted 17:00 is a time, not 1020
    assert campaign.exit.on == ["replied", "bounced"]  # "on" is a key, not True


def test_yaml_1_1_traps_stay_text(tmp_path: Path) -> None:
    text = edit("  reasons: [no_budget]\n", "  reasons: [no_budget]\n  attributes: {country: NO}\n")
    [campaign] = load_campaigns(folder(tmp_path, {"x.yaml": text}))
    assert campaign.audience.attributes == {"country": "NO"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "id: demo\nname: [oops\n",
            "campaigns/x.yaml:3: invalid YAML: a [ list is not closed with ]",
        ),
        (
            "id: demo\n  name: x\n",
            "campaigns/x.yaml:2: invalid YAML: a colon where a value should be: put a value "
            "containing ': ' in quotes, or check this line's indentation",
        ),
        (
            "",
            "campaigns/x.yaml:1: the file is empty; a campaign needs at least id, name, audience, send and tracks",
        ),
        (
            "# only a comment\n",
            "campaigns/x.yaml:1: the file is empty; a campaign needs at least id, name, audience, send and tracks",
        ),
        (
            "- id: demo\n",
            "campaigns/x.yaml:1: a campaign file must be a mapping of fields (id: ..., name: ...), not a list",
        ),
        (
            "just words\n",
            'campaigns/x.yaml:1: a campaign file must be a mapping of fields (id: ..., name: ...), not a single value ("just words")',
        ),
        (
            "id: a\n---\nid: b\n",
            "campaigns/x.yaml:2: invalid YAML: a second document after ---: a file holds one (remove the ---)",
        ),
    ],
)
def test_files_that_are_not_a_campaign_mapping(tmp_path: Path, text: str, error: str) -> None:
    assert errors_for(tmp_path, text) == [error]


def test_unknown_field_suggests_the_close_one(tmp_path: Path) -> None:
    text = edit("  reasons: [no_budget]", "  reason: [no_budget]")
    assert errors_for(tmp_path, text) == [
        'campaigns/x.yaml:6: audience.reason: unknown field (did you mean "reasons"?)'
    ]


def test_unknown_field_with_nothing_close_lists_the_fields(tmp_path: Path) -> None:
    text = edit("    end: 17:00\n", "    end: 17:00\n    lunch_break: 12:00\n")
    assert errors_for(tmp_path, text) == [
        "campaigns/x.yaml:14: send.window.lunch_break: unknown field (use days, start, end)"
    ]


def test_unknown_top_level_field(tmp_path: Path) -> None:
    assert errors_for(tmp_path, "prority: 3\n" + VALID) == [
        'campaigns/x.yaml:1: prority: unknown field (did you mean "priority"?)'
    ]


def test_unknown_field_in_a_step(tmp_path: Path) -> None:
    text = edit("        subject: Again", "        subjet: Again")
    assert errors_for(tmp_path, text) == [
        "campaigns/x.yaml:22: tracks.cold.steps[1].subject: required, but missing",
        'campaigns/x.yaml:25: tracks.cold.steps[1].subjet: unknown field (did you mean "subject"?)',
    ]


def test_missing_required_field_points_at_its_parent(tmp_path: Path) -> None:
    text = edit('  from: "Acme <hello@acme.example>"\n', "")
    assert errors_for(tmp_path, text) == ["campaigns/x.yaml:7: send.from: required, but missing"]


def test_missing_top_level_field(tmp_path: Path) -> None:
    text = edit("name: Demo\n", "")
    assert errors_for(tmp_path, text) == ["campaigns/x.yaml:1: name: required, but missing"]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            "priority: 5",
            "priority: high",
            'campaigns/x.yaml:3: priority: expected a whole number, got "high"',
        ),
        (
            "priority: 5",
            "priority: 1.5",
            "campaigns/x.yaml:3: priority: expected a whole number, got 1.5",
        ),
        ("name: Demo", "name: 42", "campaigns/x.yaml:2: name: expected text, got 42"),
        (
            "  stages: [sql]",
            "  stages: sql",
            'campaigns/x.yaml:5: audience.stages: expected a list (e.g. [a, b]), got "sql"',
        ),
        ("  stages: [sql]", "  stages: []", "campaigns/x.yaml:5: audience.stages: cannot be empty"),
        (
            "    min_score: 0",
            "    min_score: lots",
            'campaigns/x.yaml:16: tracks.cold.min_score: expected a number, got "lots"',
        ),
        (
            "    min_score: 0",
            "    min_score: -1",
            "campaigns/x.yaml:16: tracks.cold.min_score: must be at least 0, got -1",
        ),
        (
            "audience:\n  stages: [sql]\n  reasons: [no_budget]\n",
            "audience: sql\n\n\n",
            'campaigns/x.yaml:4: audience: expected a mapping (key: value), got "sql"',
        ),
        (
            "exit:\n  on: [replied, bounced]\n",
            "reentry: {policy: never}\n\n",
            'campaigns/x.yaml:26: reentry.policy: unknown value "never" (use restart, resume, deny)',
        ),
    ],
)
def test_wrong_types(tmp_path: Path, old: str, new: str, error: str) -> None:
    assert errors_for(tmp_path, edit(old, new)) == [error]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            "        wait: 3d",
            "        wait: 3 dayz",
            'campaigns/x.yaml:23: tracks.cold.steps[1].wait: "3 dayz" is not a duration (use 3d, 12h, 30m)',
        ),
        (
            "        wait: 3d",
            "        wait: 3",
            'campaigns/x.yaml:23: tracks.cold.steps[1].wait: 3 is not a duration: add the unit, e.g. "3d" for 3 days (use 3d, 12h, 30m)',
        ),
        (
            '    start: "09:00"',
            '    start: "25:00"',
            'campaigns/x.yaml:12: send.window.start: "25:00" is not a time of day (use HH:MM in quotes, e.g. "09:00")',
        ),
        (
            "    days: [mon, tue]",
            "    days: [mon, tues]",
            'campaigns/x.yaml:11: send.window.days[1]: unknown weekday "tues" (use mon, tue, wed, thu, fri, sat, sun)',
        ),
        (
            "  timezone: Europe/Berlin",
            "  timezone: Europe/Berln",
            'campaigns/x.yaml:9: send.timezone: "Europe/Berln" is not an IANA time zone (e.g. Europe/Berlin, America/New_York)',
        ),
        (
            '  from: "Acme <hello@acme.example>"',
            '  from: "Acme <hello at acme>"',
            'campaigns/x.yaml:8: send.from: "Acme <hello at acme>" is not a valid email address: '
            "An email address must have an @-sign.",
        ),
        (
            "    end: 17:00",
            "    end: 08:00",
            'campaigns/x.yaml:13: send.window.end: "08:00" must be later than start "09:00"',
        ),
        (
            "    end: 17:00",
            "    end: 09:00",
            'campaigns/x.yaml:13: send.window.end: "09:00" must be later than start "09:00"',
        ),
        (
            "  stages: [sql]",
            "  stages: [sql, oppty]",
            'campaigns/x.yaml:5: audience.stages[1]: unknown stage "oppty" (use mql, sal, sql, opportunity)',
        ),
        (
            "    min_score: 0",
            "    min_score: 10",
            "campaigns/x.yaml:16: tracks.cold.min_score: the first track must start at 0, not 10",
        ),
        (
            "      - id: nudge",
            "      - id: checkin",
            'campaigns/x.yaml:22: tracks.cold.steps[1].id: "checkin" is already the id of tracks.cold.steps[0]; step ids must be unique',
        ),
        (
            "        subject: Again",
            "        subject: Again\n        condition: {event: opened, step: chekin}",
            'campaigns/x.yaml:26: tracks.cold.steps[1].condition.step: unknown step "chekin"; name an earlier step of this track (earlier steps: checkin)',
        ),
        (
            "        subject: Hello",
            "        subject: Hello\n        condition: {event: clicked, step: nudge}",
            'campaigns/x.yaml:22: tracks.cold.steps[0].condition.step: "nudge" comes later in track "cold"; name an earlier step',
        ),
        (
            "        subject: Again",
            "        subject: Again\n        condition: {event: read}",
            'campaigns/x.yaml:26: tracks.cold.steps[1].condition.event: unknown condition event "read" (use opened, clicked, replied, not_opened, not_clicked)',
        ),
        (
            "  on: [replied, bounced]",
            "  on: [replied, spam]",
            'campaigns/x.yaml:27: exit.on[1]: unknown exit event "spam" (use replied, requalified, unsubscribed, bounced, complained)',
        ),
        (
            "        subject: Hello",
            "        subject: Hello {{ lead.name",
            "campaigns/x.yaml:21: tracks.cold.steps[0].subject: \"Hello {{ lead.name\" is not a valid Jinja template: unexpected end of template, expected 'end of print statement'",
        ),
        (
            "id: demo",
            "id: Demo Campaign",
            'campaigns/x.yaml:1: id: "Demo Campaign" is not a slug (use lowercase letters, digits and hyphens, e.g. lost-sql-winback)',
        ),
    ],
)
def test_bad_values_are_named_with_their_line(
    tmp_path: Path, old: str, new: str, error: str
) -> None:
    assert errors_for(tmp_path, edit(old, new)) == [error]


def test_a_condition_on_a_later_step_has_no_earlier_steps_to_offer(tmp_path: Path) -> None:
    text = edit(
        "        subject: Hello",
        "        subject: Hello\n        condition: {event: clicked, step: nudge}",
    )
    [error] = errors_for(tmp_path, text)
    assert "earlier steps:" not in error


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    text = edit("priority: 5\n", "priority: 5\npriority: 7\n")
    assert errors_for(tmp_path, text) == [
        "campaigns/x.yaml:4: priority: duplicate key (also on line 3); keep one"
    ]


def test_all_errors_of_a_file_are_reported_in_line_order(tmp_path: Path) -> None:
    text = edit("  timezone: Europe/Berlin", "  timezone: Mars/Olympus")
    text = text.replace("        wait: 3d", "        wait: soon").replace(
        "priority: 5", "priority: x"
    )
    errors = errors_for(tmp_path, text)
    assert [e.split(":")[1] for e in errors] == ["3", "9", "23"]


def test_unknown_reason_codes_name_the_known_ones(tmp_path: Path) -> None:
    text = edit("  reasons: [no_budget]", "  reasons: [no_budget, no_buget, moon_phase]")
    known = "bad_timing, chose_competitor, no_authority, no_budget, no_need_yet, sla_no_decision, went_silent"
    assert errors_for(tmp_path, text, known_reasons=REASONS) == [
        f'campaigns/x.yaml:6: audience.reasons[1]: unknown reason "no_buget" (did you mean "no_budget"? known reasons: {known})',
        f'campaigns/x.yaml:6: audience.reasons[2]: unknown reason "moon_phase" (known reasons: {known})',
    ]


def test_reason_codes_are_free_without_a_known_list(tmp_path: Path) -> None:
    text = edit("  reasons: [no_budget]", "  reasons: [anything_goes]")
    assert errors_for(tmp_path, text) == []


def test_missing_templates_are_named_relative_to_the_working_folder(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "lost-sql").mkdir(parents=True)
    (templates / "lost-sql" / "checkin.mjml").write_text("x")
    text = edit("lost-sql/checkin.mjml", "lost-sql/chckin.mjml")
    assert errors_for(tmp_path, text, templates_dir=templates) == [
        "campaigns/x.yaml:20: tracks.cold.steps[0].template: templates/lost-sql/chckin.mjml does not exist",
        "campaigns/x.yaml:24: tracks.cold.steps[1].template: templates/lost-sql/nudge.mjml does not exist",
    ]


def test_duplicate_campaign_ids_name_both_files(tmp_path: Path) -> None:
    directory = folder(tmp_path, {"a.yaml": VALID, "b.yml": "# same id\n" + VALID})
    campaigns, errors = validate_campaigns(directory)
    assert [c.id for c in campaigns] == ["demo"]
    assert errors == [
        'campaigns/b.yml:2: id: "demo" is already the id of campaigns/a.yaml:1; campaign ids must be unique'
    ]


def test_valid_files_around_a_broken_one_still_load(tmp_path: Path) -> None:
    directory = folder(
        tmp_path,
        {
            "a.yaml": VALID.replace("id: demo", "id: first"),
            "b.yaml": VALID.replace("id: demo", "id: broken").replace("wait: 3d", "wait: 3 dayz"),
            "c.yaml": VALID.replace("id: demo", "id: third"),
            "notes.txt": "not a campaign",
            ".#c.yaml": "editor lock file",
        },
    )
    campaigns, errors = validate_campaigns(directory)
    assert [c.id for c in campaigns] == ["first", "third"]
    assert errors == [
        'campaigns/b.yaml:23: tracks.cold.steps[1].wait: "3 dayz" is not a duration (use 3d, 12h, 30m)'
    ]
    with pytest.raises(CampaignFileErrors) as caught:
        load_campaigns(directory)
    assert caught.value.errors == errors


def test_errors_from_every_file_are_collected(tmp_path: Path) -> None:
    directory = folder(tmp_path, {"a.yaml": "", "b.yaml": "id: [", "c.yaml": VALID})
    with pytest.raises(CampaignFileErrors) as caught:
        load_campaigns(directory)
    assert [e.split(":")[0] for e in caught.value.errors] == [
        "campaigns/a.yaml",
        "campaigns/b.yaml",
    ]
    assert str(caught.value).endswith("(and 1 more)")


def test_a_missing_directory_is_one_error(tmp_path: Path) -> None:
    campaigns, errors = validate_campaigns(tmp_path / "nope")
    assert campaigns == []
    assert errors == [
        f"{tmp_path / 'nope'}: no such directory (it should hold the campaign *.yaml files)"
    ]


def test_load_campaign_file(tmp_path: Path) -> None:
    directory = folder(tmp_path, {"x.yaml": VALID, "y.yaml": edit("wait: 1d", "wait: 1 day")})
    assert load_campaign_file(directory / "x.yaml").id == "demo"
    with pytest.raises(CampaignFileErrors) as caught:
        load_campaign_file(directory / "y.yaml", known_reasons={"bad_timing"})
    assert [e.split(":", 2)[:2] for e in caught.value.errors] == [["campaigns/y.yaml", "19"]]


# --- the example campaigns and templates -------------------------------------------------


def test_the_example_campaigns_load_with_their_templates() -> None:
    campaigns = load_campaigns(
        SKELETON / "campaigns", known_reasons=REASONS, templates_dir=SKELETON / "templates"
    )
    assert {c.id: c.name for c in campaigns} == {
        "lost-sql-winback": "Lost SQL win-back",
        "rejected-mql-nurture": "Rejected MQL nurture",
    }
    by_id = {c.id: c for c in campaigns}
    winback = by_id["lost-sql-winback"]
    assert winback.tracks["cold"].steps[0].id == "checkin"
    assert winback.send.window.days == [0, 1, 2, 3]
    assert by_id["rejected-mql-nurture"].send.window.days == [0, 1, 2, 3, 4]
    for campaign in campaigns:
        assert list(campaign.tracks) == ["cold", "warm", "hot"]
        assert any(step.condition for _, step in campaign.all_steps())
        assert campaign.send.from_ == "Acme Growth Team <hello@acme.example>"


def test_the_repository_root_is_a_working_drip_folder() -> None:
    assert (REPO / "campaigns").resolve() == (SKELETON / "campaigns").resolve()
    assert (REPO / "templates").resolve() == (SKELETON / "templates").resolve()


def test_cold_tracks_never_talk_about_price() -> None:
    for campaign in load_campaigns(SKELETON / "campaigns"):
        for step in campaign.tracks["cold"].steps:
            text = (SKELETON / "templates" / step.template).read_text(encoding="utf-8").lower()
            assert "pric" not in text and "pric" not in step.subject.lower(), step.template


STEP_TEMPLATES = sorted(
    path.relative_to(SKELETON / "templates").as_posix()
    for path in (SKELETON / "templates").rglob("*.mjml")
    if path.parent.name not in ("layouts", "partials")
)


@pytest.mark.parametrize("name", STEP_TEMPLATES)
def test_every_step_template_renders_and_compiles(name: str) -> None:
    source = (SKELETON / "templates" / name).read_text(encoding="utf-8")
    assert source.startswith('{% extends "layouts/base.mjml" %}')
    full = TemplateEngine(SKELETON / "templates", undefined=jinja2.StrictUndefined)
    sparse = TemplateEngine(SKELETON / "templates", undefined=NeedsDefault)
    address = "Acme GmbH, Example Street 1, 10115 Berlin"
    for engine, context in (
        (full, sample_context(postal_address=address)),
        (sparse, sparse_context(postal_address=address)),  # every lead field may be missing
    ):
        html = engine.render(name, context, subject="Hi").html
        assert "/u/sample-unsubscribe-token" in html
        assert "Acme GmbH, Example Street 1" in html
        assert "{{" not in html and "{%" not in html


def test_every_template_is_used_by_a_step() -> None:
    used = {
        step.template for c in load_campaigns(SKELETON / "campaigns") for _, step in c.all_steps()
    }
    assert used == set(STEP_TEMPLATES)


# --- round trip ----------------------------------------------------------------------------

slugs = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,6})?", fullmatch=True)
plain_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="{}#%"
    ),
    min_size=1,
    max_size=30,
).filter(str.strip)
minutes = st.integers(0, 60 * 24 * 60)


@st.composite
def campaigns(draw: st.DrawFn) -> dict[str, Any]:
    step_ids = draw(st.lists(slugs, min_size=1, max_size=6, unique=True))
    n_tracks = draw(st.integers(1, min(3, len(step_ids))))
    bands = [
        0,
        *sorted(
            draw(
                st.lists(
                    st.integers(1, 100), min_size=n_tracks - 1, max_size=n_tracks - 1, unique=True
                )
            )
        ),
    ]
    tracks: dict[str, Any] = {}
    for index, band in enumerate(bands):
        ids = step_ids[index::n_tracks]
        steps = []
        for position, step_id in enumerate(ids):
            step: dict[str, Any] = {
                "id": step_id,
                "wait": f"{draw(minutes)}m",
                "template": f"{step_id}/mail.mjml",
                "subject": draw(plain_text),
            }
            if position and draw(st.booleans()):
                step["condition"] = {
                    "event": draw(st.sampled_from(["opened", "clicked", "not_opened"])),
                    "step": draw(st.sampled_from(ids[:position])),
                }
            steps.append(step)
        tracks[f"band-{index}"] = {"min_score": band, "steps": steps}
    start = draw(st.integers(0, 23 * 60 - 1))
    end = draw(st.integers(start + 1, 23 * 60 + 59))
    return {
        "id": draw(slugs),
        "name": draw(plain_text),
        "version": draw(st.integers(1, 50)),
        "priority": draw(st.integers(-100, 100)),
        "description": draw(st.none() | plain_text),
        "audience": {
            "stages": draw(
                st.lists(
                    st.sampled_from(["mql", "sal", "sql", "opportunity"]), min_size=1, unique=True
                )
            ),
            "reasons": draw(st.lists(st.sampled_from(sorted(REASONS)), unique=True)),
            "attributes": draw(
                st.dictionaries(
                    slugs, plain_text | st.lists(plain_text, min_size=1, max_size=3), max_size=2
                )
            ),
        },
        "reentry": {
            "policy": draw(st.sampled_from(["restart", "resume", "deny"])),
            "cooldown_days": draw(st.integers(0, 365)),
            "max_recycles": draw(st.none() | st.integers(1, 9)),
        },
        "send": {
            "from": "Acme <hello@acme.example>",
            "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])),
            "window": {
                "days": draw(
                    st.lists(
                        st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                        min_size=1,
                        unique=True,
                    )
                ),
                "start": f"{start // 60:02d}:{start % 60:02d}",
                "end": f"{end // 60:02d}:{end % 60:02d}",
            },
        },
        "tracks": tracks,
        "exit": {
            "on": draw(
                st.lists(st.sampled_from(["replied", "requalified", "bounced"]), unique=True)
            ),
            "after_days": draw(st.none() | st.integers(1, 400)),
        },
    }


@pytest.mark.slow  # a large hypothesis search
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(campaigns())
def test_load_dump_load_round_trips(data: dict[str, Any]) -> None:
    original = Campaign.model_validate(data)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "c.yaml"
        path.write_text(
            yaml.safe_dump(dump_campaign(original), sort_keys=False, allow_unicode=True)
        )
        first = load_campaign_file(path)
        path.write_text(yaml.safe_dump(dump_campaign(first), sort_keys=False, allow_unicode=True))
        second = load_campaign_file(path)
    assert first == original
    assert second == first
    assert list(second.tracks) == list(original.tracks)


def test_dump_is_plain_data_in_file_spelling() -> None:
    [campaign] = [c for c in load_campaigns(SKELETON / "campaigns") if c.id == "lost-sql-winback"]
    dumped = dump_campaign(campaign)
    assert dumped["send"]["from"] == "Acme Growth Team <hello@acme.example>"
    assert dumped["send"]["window"]["days"] == ["mon", "tue", "wed", "thu"]
    assert dumped["tracks"]["cold"]["steps"][0] == {
        "id": "checkin",
        "wait": "1d",
        "template": "lost-sql/checkin.mjml",
        "subject": "Still thinking about {{ lead.company | default('your team') }}?",
        "variants": [
            {"id": "still-thinking", "weight": 1.0},
            {
                "id": "smaller-start",
                "subject": "A smaller way to start with Acme, "
                "{{ lead.first_name | default('there') }}",
                "weight": 1.0,
            },
        ],
        "pick_winner": {"metric": "human_click_rate", "min_sends": 500, "confidence": 0.95},
    }
    assert dumped["holdout"] == "10%"
    assert "reply_to" not in dumped["send"]


def test_the_complete_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "campaigns.md").read_text(encoding="utf-8")
    example = doc.split("## A complete file\n\n```yaml\n", 1)[1].split("```", 1)[0]
    [campaign] = load_campaigns(folder(tmp_path, {"x.yaml": example}), known_reasons=REASONS)
    assert campaign.id == "lost-sql-winback"
    assert campaign.audience.attributes == {"country": ["DE", "AT", "CH"]}
