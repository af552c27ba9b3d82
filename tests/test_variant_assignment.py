"""A/B variants, the pure parts: the schema's checks (``file:line`` and the fix), the stable
weighted assignment, and the verdict on a step's figures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dripengine.campaigns import validate_campaigns
from dripengine.campaigns.variants import Variant, assign, bucket, chosen, find_variant
from dripengine.campaigns.winner import judge

# Line numbers matter in these tests: keep this text as it is.
HEAD = """\
id: demo
name: Demo
audience:
  stages: [sql]
send:
  from: "Acme <hello@acme.example>"
tracks:
  cold:
    min_score: 0
    steps:
      - id: checkin
        wait: 1d
        template: lost-sql/checkin.mjml
        subject: Hello
"""  # the step's own lines end at line 14


def problems(tmp_path: Path, step_tail: str) -> list[str]:
    folder = tmp_path / "campaigns"
    folder.mkdir(exist_ok=True)
    (folder / "demo.yaml").write_text(HEAD + step_tail, encoding="utf-8")
    _, errors = validate_campaigns(folder)
    return errors


def test_valid_variants_load_with_their_defaults(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "demo.yaml").write_text(
        HEAD
        + """\
        variants:
          - id: control
          - id: short
            subject: Hi
            weight: 3
        pick_winner: {metric: human_click_rate, min_sends: 500}
""",
        encoding="utf-8",
    )
    [campaign], errors = validate_campaigns(folder)
    assert errors == []
    step = campaign.step("checkin")
    assert step.variants is not None
    assert [(v.id, v.subject, v.template, v.weight) for v in step.variants] == [
        ("control", None, None, 1.0),
        ("short", "Hi", None, 3.0),
    ]
    assert step.pick_winner is not None and step.pick_winner.confidence == 0.95


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            "        variants:\n          - id: a\n            subject: A\n",
            "campaigns/demo.yaml:15: tracks.cold.steps[0].variants: list at least two variants",
        ),
        (
            "        variants:\n          - id: a\n            subject: A\n"
            "          - id: a\n            subject: B\n",
            'campaigns/demo.yaml:18: tracks.cold.steps[0].variants[1].id: "a" is already the id '
            "of variants[0]; variant ids must be unique within a step",
        ),
        (
            "        variants:\n          - id: a\n          - id: b\n            subject: Hello\n",
            "campaigns/demo.yaml:17: tracks.cold.steps[0].variants[1]: sends the same subject and "
            'template as variants[0] ("a"): give it another subject or template',
        ),
        (
            "        variants:\n          - id: a\n          - id: b\n            subject: B\n"
            "            wieght: 2\n",
            'campaigns/demo.yaml:19: tracks.cold.steps[0].variants[1].wieght: unknown field (did you mean "weight"?)',
        ),
        (
            "        variants:\n          - id: a\n          - id: b\n            subject: B\n"
            "            weight: 0\n",
            "campaigns/demo.yaml:19: tracks.cold.steps[0].variants[1].weight: must be more than 0, got 0",
        ),
        (
            "        variants:\n          - id: A b\n          - id: b\n            subject: B\n",
            'campaigns/demo.yaml:16: tracks.cold.steps[0].variants[0].id: "A b" is not a slug',
        ),
        (
            "        pick_winner: {metric: human_click_rate, min_sends: 5}\n",
            "campaigns/demo.yaml:15: tracks.cold.steps[0].pick_winner: a winner needs variants",
        ),
        (
            "        variants:\n          - id: a\n          - id: b\n            subject: B\n"
            "        pick_winner: {metric: human_clik_rate, min_sends: 5}\n",
            'campaigns/demo.yaml:19: tracks.cold.steps[0].pick_winner.metric: unknown metric "human_clik_rate" '
            '(did you mean "human_click_rate"?); use human_click_rate, human_open_rate, reply_rate',
        ),
        (
            "        variants:\n          - id: a\n          - id: b\n            subject: B\n"
            "        pick_winner: {metric: reply_rate, min_sends: 0}\n",
            "campaigns/demo.yaml:19: tracks.cold.steps[0].pick_winner.min_sends: must be at least 1, got 0",
        ),
        (
            "        variants:\n          - id: a\n          - id: b\n            subject: B\n"
            "        pick_winner: {metric: reply_rate, min_sends: 10, confidence: 95}\n",
            "campaigns/demo.yaml:19: tracks.cold.steps[0].pick_winner.confidence: 95 is not a "
            "confidence between 0.5 and 1 (use e.g. 0.95 for 95%)",
        ),
    ],
)
def test_each_mistake_is_one_line_with_its_place_and_the_fix(
    tmp_path: Path, tail: str, expected: str
) -> None:
    found = problems(tmp_path, tail)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_a_variant_template_that_does_not_exist_is_named(tmp_path: Path) -> None:
    templates = tmp_path / "templates" / "lost-sql"
    templates.mkdir(parents=True)
    (templates / "checkin.mjml").write_text("<mjml></mjml>", encoding="utf-8")
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "demo.yaml").write_text(
        HEAD + "        variants:\n          - id: a\n          - id: b\n"
        "            template: lost-sql/nope.mjml\n",
        encoding="utf-8",
    )
    _, errors = validate_campaigns(folder, templates_dir=tmp_path / "templates")
    assert errors == [
        "campaigns/demo.yaml:18: tracks.cold.steps[0].variants[1].template: "
        "templates/lost-sql/nope.mjml does not exist"
    ]


# --- assignment ---------------------------------------------------------------------------------

EMAILS = [f"lead{i}@company{i % 97}.example" for i in range(20_000)]


def test_the_shares_follow_the_weights_over_20000_leads() -> None:
    variants = [Variant(id="a", subject="A"), Variant(id="b", subject="B", weight=3.0)]
    variants.append(Variant(id="c", subject="C", weight=0.5))
    counts = dict.fromkeys("abc", 0)
    for email in EMAILS:
        counts[assign(email, "demo", "checkin", variants).id] += 1
    total = sum(v.weight for v in variants)
    for variant in variants:
        expected = len(EMAILS) * variant.weight / total
        sd = math.sqrt(len(EMAILS) * (variant.weight / total) * (1 - variant.weight / total))
        assert abs(counts[variant.id] - expected) < 4 * sd, counts  # 4 sd: never by chance


def test_the_same_lead_gets_the_same_variant_on_every_run_whatever_its_spelling() -> None:
    variants = [Variant(id="a", subject="A"), Variant(id="b", subject="B")]
    first = [assign(e, "demo", "checkin", variants).id for e in EMAILS[:500]]
    again = [assign(f"  {e.upper()} ", "demo", "checkin", variants).id for e in EMAILS[:500]]
    assert first == again
    # pinned: the hash is part of the contract (a change would move leads between variants)
    assert bucket("jane@acme.example", "demo", "checkin") == pytest.approx(
        int.from_bytes(
            __import__("hashlib").sha256(b"jane@acme.example\x00demo\x00checkin").digest()[:8],
            "big",
        )
        / 2**64
    )


def test_steps_and_campaigns_split_leads_independently() -> None:
    variants = [Variant(id="a", subject="A"), Variant(id="b", subject="B")]
    one = [assign(e, "demo", "checkin", variants).id for e in EMAILS[:4000]]
    other = [assign(e, "demo", "follow-up", variants).id for e in EMAILS[:4000]]
    same = sum(x == y for x, y in zip(one, other, strict=True))
    assert 1800 < same < 2200  # independent halves agree about half the time


def test_a_recorded_winner_is_sent_to_everyone_while_the_step_lists_it(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "demo.yaml").write_text(
        HEAD + "        variants:\n          - id: a\n          - id: b\n            subject: B\n",
        encoding="utf-8",
    )
    [campaign], _ = validate_campaigns(folder)
    step = campaign.step("checkin")
    assert {chosen(e, "demo", step, None).id for e in EMAILS[:50]} == {"a", "b"}  # type: ignore[union-attr]
    assert {chosen(e, "demo", step, "b").id for e in EMAILS[:50]} == {"b"}  # type: ignore[union-attr]
    # a winner the file no longer lists: back to the split
    assert {chosen(e, "demo", step, "gone").id for e in EMAILS[:50]} == {"a", "b"}  # type: ignore[union-attr]
    with pytest.raises(
        ValueError, match=r'no variant "bb" \(did you mean "b"\?\) \(variants: a, b\)'
    ):
        find_variant(step, "bb")


# --- the verdict --------------------------------------------------------------------------------


def test_no_winner_before_every_variant_has_min_sends() -> None:
    verdict = judge(
        ["a", "b"], {"a": (10, 499), "b": (60, 500)}, metric="human_click_rate",
        min_sends=500, confidence=0.95,
    )  # fmt: skip
    assert verdict.winner is None
    assert verdict.reason == "collecting: sends per variant a 499/500"


def test_a_significant_lead_wins_and_a_small_one_does_not() -> None:
    kwargs = {"metric": "human_click_rate", "min_sends": 500, "confidence": 0.95}
    close = judge(["a", "b"], {"a": (20, 500), "b": (28, 500)}, **kwargs)  # type: ignore[arg-type]
    assert close.winner is None and close.reason.startswith("no winner yet: b leads with 5.6%")
    clear = judge(["a", "b"], {"a": (20, 500), "b": (50, 500)}, **kwargs)  # type: ignore[arg-type]
    assert clear.winner == "b"
    [against] = clear.detail["comparisons"]
    assert against["variant"] == "a" and against["significant"] is True
    assert against["p_value"] < 0.05 and against["low"] > 0
    assert clear.detail["method"] == "newcombe-wilson"
    assert clear.detail["variants"]["b"] == {"sent": 500, "successes": 50, "rate": 0.1}


def test_with_three_variants_the_best_must_beat_each_other_at_a_corrected_confidence() -> None:
    kwargs = {"metric": "human_click_rate", "min_sends": 500, "confidence": 0.95}
    # b beats a clearly, but not c
    verdict = judge(
        ["a", "b", "c"],
        {"a": (20, 500), "b": (50, 500), "c": (42, 500)},
        **kwargs,  # type: ignore[arg-type]
    )
    assert verdict.winner is None and "not significantly better than c" in verdict.reason
    assert verdict.detail["comparison_confidence"] == 0.975
    # p about 0.037: significant at 95% for two variants, not for three (Bonferroni: 97.5%)
    two = judge(["a", "b"], {"a": (20, 500), "b": (35, 500)}, **kwargs)  # type: ignore[arg-type]
    three = judge(
        ["a", "b", "c"],
        {"a": (20, 500), "b": (35, 500), "c": (0, 500)},
        **kwargs,  # type: ignore[arg-type]
    )
    p = two.detail["comparisons"][0]["p_value"]
    assert 0.025 < p < 0.05
    assert two.winner == "b" and three.winner is None


def test_a_long_variant_id_is_refused_and_variants_survive_a_dump(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"        variants:\n          - id: {'a' * 65}\n          - id: b\n            subject: B\n",
    )
    assert found == [
        "campaigns/demo.yaml:16: tracks.cold.steps[0].variants[0].id: 65 characters; "
        "a variant id has at most 64"
    ]
    import yaml

    from dripengine.campaigns import dump_campaign, load_campaign_file

    path = tmp_path / "campaigns" / "demo.yaml"
    path.write_text(
        HEAD + "        variants:\n          - id: a\n          - id: b\n            subject: B\n"
        "            weight: 2\n        pick_winner: {metric: reply_rate, min_sends: 9}\n",
        encoding="utf-8",
    )
    first = load_campaign_file(path)
    path.write_text(yaml.safe_dump(dump_campaign(first), sort_keys=False), encoding="utf-8")
    assert load_campaign_file(path) == first
