"""The compile cache: the most recently used template versions stay compiled, the oldest go."""

from __future__ import annotations

from pathlib import Path

import pytest

import dripengine.templates.compile as compile_module
from dripengine.templates.compile import _LRU
from tests.test_templates_render import LAYOUT, page, write


@pytest.fixture
def compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A templates folder with three different templates, and the list of MJML compiles made."""
    root = tmp_path / "templates"
    write(root, "layouts/base.mjml", LAYOUT)
    for name in "abc":
        write(root, f"{name}.mjml", page(f"<mj-text>{name} {{{{ lead.company }}}}</mj-text>"))
    calls: list[str] = []
    real = compile_module.mjml_to_html

    def counting(source: str) -> str:
        calls.append(source)
        return real(source)

    monkeypatch.setattr(compile_module, "mjml_to_html", counting)
    return root, calls


def compile_all(root: Path, cache: _LRU, names: str) -> None:
    for name in names:
        compile_module.compile_template(root, f"{name}.mjml", cache=cache)


def test_the_least_recently_used_version_is_evicted(compiles: tuple[Path, list[str]]) -> None:
    root, calls = compiles
    cache = _LRU(2)
    compile_all(root, cache, "aba")  # a, b compiled; a a hit, so b is now the older one
    assert len(calls) == 2
    compile_all(root, cache, "c")  # evicts b, not a (a was used after it)
    assert len(calls) == 3
    compile_all(root, cache, "ac")
    assert len(calls) == 3
    compile_all(root, cache, "b")
    assert len(calls) == 4


def test_a_cache_of_size_zero_compiles_every_time(compiles: tuple[Path, list[str]]) -> None:
    root, calls = compiles
    cache = _LRU(0)
    compile_all(root, cache, "aa")
    assert len(calls) == 2
    assert cache.data == {}
