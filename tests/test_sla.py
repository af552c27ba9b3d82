from pathlib import Path

import pytest

from dripengine.cli.scaffold import SKELETON
from dripengine.exceptions import SLAError
from dripengine.funnel.sla import load_sla, render_markdown


def test_shipped_sla_loads_and_renders() -> None:
    sla = load_sla(SKELETON / "sla.yaml")
    assert {
        "no_budget",
        "bad_timing",
        "no_authority",
        "no_need_yet",
        "went_silent",
        "chose_competitor",
        "not_a_fit",
    } <= set(sla.recycle_reasons)
    assert not sla.recycle_reasons["not_a_fit"].may_requalify
    text = render_markdown(sla)
    assert text.startswith("# Acme sales & marketing SLA\n")
    assert "| `chose_competitor` | Chose a competitor | SQL, opportunity | yes |" in text
    assert "Never requalified: `not_a_fit`." in text


def test_threshold_rises_for_leads_recycled_before() -> None:
    rule = load_sla(SKELETON / "sla.yaml").requalification
    assert rule.threshold(1) == 60
    assert rule.threshold(2) == 75


def sla_errors(path: Path, text: str) -> list[str]:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SLAError) as caught:
        load_sla(path)
    errors = caught.value.errors
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    assert caught.value.message == errors[0] + more
    return errors


def test_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    assert sla_errors(path, "recycle_reasons:\n  x:\n    label: X\n    stages: [customer]\n") == [
        f'{path}:4: recycle_reasons.x.stages: "customer" is not a stage leads are recycled from '
        "(use: mql, sal, sql, opportunity)"
    ]
    # the typo comes first: it explains the "missing" field beside it
    assert sla_errors(path, "recycle_reasons:\n  x:\n    lable: X\n") == [
        f'{path}:3: recycle_reasons.x.lable: unknown field (did you mean "label"?)',
        f"{path}:2: recycle_reasons.x.label: required, but missing",
    ]
    assert sla_errors(path, "recycle_reasons: [\n") == [
        f"{path}:2: invalid YAML: the file ends inside a [ list or {{ mapping: close it"
    ]
    assert sla_errors(path, "") == [
        f"{path}:1: the file is empty; an SLA needs at least recycle_reasons"
    ]
    assert sla_errors(path, "- no_budget\n") == [
        f"{path}:1: an SLA file must be a mapping of sections "
        "(recycle_reasons: ..., requalification: ...), not a list"
    ]
    assert sla_errors(path, "title: SLA\n") == [f"{path}:1: recycle_reasons: required, but missing"]
    with pytest.raises(SLAError, match="does not exist"):
        load_sla(tmp_path / "missing.yaml")


def test_shipped_sla_typo_points_at_its_line(tmp_path: Path) -> None:
    text = (SKELETON / "sla.yaml").read_text(encoding="utf-8")
    path = tmp_path / "sla.yaml"
    lines = text.splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if "No budget this cycle" in line)
    lines[number] = lines[number].replace("label:", "lable:")
    errors = sla_errors(path, "".join(lines))
    assert errors[0] == (
        f"{path}:{number + 1}: recycle_reasons.no_budget.lable: unknown field "
        '(did you mean "label"?)'
    )
    with pytest.raises(SLAError, match=r"^\S+sla\.yaml:\d+: .*lable.* \(and 1 more\)$"):
        load_sla(path)


def test_duplicate_key(tmp_path: Path) -> None:
    text = "title: A\nrecycle_reasons:\n  x:\n    label: X\n    label: Y\n"
    assert sla_errors(tmp_path / "sla.yaml", text) == [
        f"{tmp_path / 'sla.yaml'}:5: recycle_reasons.x.label: duplicate key (also on line 4); "
        "keep one"
    ]


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    text = (
        "titel: SLA\n"  # 1
        "recycle_reasons:\n"  # 2
        "  x:\n"  # 3
        "    label: X\n"  # 4
        "    stages: []\n"  # 5
        "requalification:\n"  # 6
        "  score: -5\n"  # 7
        "  min_fit: E\n"  # 8
        "sales_commitments:\n"  # 9
        "  first_touch_hours: 2.5\n"  # 10
    )
    assert sla_errors(path, text) == [
        f'{path}:1: titel: unknown field (did you mean "title"?)',
        f"{path}:5: recycle_reasons.x.stages: cannot be empty",
        f"{path}:7: requalification.score: must be at least 0, got -5",
        f'{path}:8: requalification.min_fit: unknown value "E" (use A, B, C, D)',
        f"{path}:10: sales_commitments.first_touch_hours: expected a whole number, got 2.5",
    ]


def test_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    text = "recycle_reasons:\n  x:\n    label: [a, b]\n    stages: mql\nowners: nobody\n"
    assert sla_errors(path, text) == [
        f"{path}:3: recycle_reasons.x.label: expected text, got a list",
        f'{path}:4: recycle_reasons.x.stages: expected a list (e.g. [a, b]), got "mql"',
        f'{path}:5: owners: expected a mapping (key: value), got "nobody"',
    ]


def test_yaml_1_1_traps_do_not_apply(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text("definitions:\n  mql: no\nrecycle_reasons:\n  on:\n    label: On hold\n")
    sla = load_sla(path)
    assert sla.definitions == {"mql": "no"}
    assert set(sla.recycle_reasons) == {"on"}
