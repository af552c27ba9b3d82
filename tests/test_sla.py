from pathlib import Path

import pytest

from dripengine.exceptions import SLAError
from dripengine.scaffold import SKELETON
from dripengine.sla import load_sla, render_markdown


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


def test_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text("recycle_reasons:\n  x:\n    label: X\n    stages: [customer]\n")
    with pytest.raises(
        SLAError,
        match=r'recycle_reasons.x.stages: "customer" is not a stage leads are recycled from',
    ):
        load_sla(path)
    path.write_text("recycle_reasons:\n  x:\n    lable: X\n")
    with pytest.raises(SLAError, match="recycle_reasons.x.lable: unknown field"):
        load_sla(path)
    path.write_text("recycle_reasons: [\n")
    with pytest.raises(SLAError, match=r"sla.yaml:\d+: not valid YAML"):
        load_sla(path)
    with pytest.raises(SLAError, match="does not exist"):
        load_sla(tmp_path / "missing.yaml")
