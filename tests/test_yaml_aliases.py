"""The alias expansion budget: every alias use adds what it expands to, up to MAX_VALUES exactly."""

from __future__ import annotations

from dripengine.yamlfile.aliases import MAX_VALUES
from dripengine.yamlfile.parse import parse_yaml

WORDING = {"needs": "a thing needs a name", "must_be": "a thing file must be a mapping"}
ITEMS = 999  # the anchored list: the list itself and its items are 1,000 values per use


def flat_uses(uses: int) -> str:
    """An anchored list on line 1, then one alias of it per line (the n-th on line n + 1)."""
    anchored = f"a: &a [{', '.join(['x'] * ITEMS)}]\n"
    return anchored + "".join(f"u{n}: *a\n" for n in range(1, uses + 1))


def test_uses_up_to_the_budget_load_and_share_the_anchored_value() -> None:
    uses = MAX_VALUES // (ITEMS + 1)
    document, errors = parse_yaml(flat_uses(uses), "things/x.yaml", **WORDING)
    assert errors == []
    assert document is not None
    assert document.data[f"u{uses}"] is document.data["a"]


def test_the_use_that_crosses_the_budget_is_named_by_its_line() -> None:
    uses = MAX_VALUES // (ITEMS + 1) + 1
    document, errors = parse_yaml(flat_uses(uses), "things/x.yaml", **WORDING)
    assert document is None
    assert errors == [
        f"things/x.yaml:{uses + 1}: aliases expand this file past {MAX_VALUES:,} values "
        "(nested anchors and aliases); write the values out, or alias fewer levels"
    ]
