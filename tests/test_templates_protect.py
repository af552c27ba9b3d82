"""Jinja through the MJML compile: placeholders in, the same Jinja out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.templates.protect import (
    PREFIX,
    Registry,
    UnclosedTag,
    escape_stray_delimiters,
    is_structure,
    scan,
)

NAMES = st.sampled_from(
    ["lead.first_name", "x", "lead.attributes.industry", "link('https://a.example/?q=1')"]
)
STRINGS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12).map(
    lambda s: s.replace("\\", "").replace("'", "")
)
EXPRESSIONS = st.one_of(
    st.builds(lambda n: "{{ " + n + " }}", NAMES),
    st.builds(lambda n, s: "{{ " + n + " | default('" + s + "') }}", NAMES, STRINGS),
    st.builds(lambda s: '{{ "' + s.replace('"', "") + '" }}', STRINGS),
    st.builds(lambda n: "{% if " + n + " < 3 %}", NAMES),
    st.just("{% endif %}"),
    st.just("{{ {'a': {'b': 1}} }}"),
    st.just('{{ "}}" ~ "%}" }}'),
    st.just("{%- for i in [1, 2] -%}"),
    st.just("{% raw %}{{ not jinja }}{% endraw %}"),
)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30).filter(
    lambda s: "{" not in s and PREFIX not in s
)


@given(st.lists(st.tuples(TEXT, EXPRESSIONS), max_size=8), TEXT)
def test_protect_then_restore_gives_the_source_back(
    pieces: list[tuple[str, str]], tail: str
) -> None:
    source = "".join(text + tag for text, tag in pieces) + tail
    registry = Registry()
    protected = registry.protect(source, "t.mjml")
    assert "{{" not in protected.text and "{%" not in protected.text
    assert registry.restore(protected.text) == source
    restored, _ = registry.restore_with_lines(protected.text)
    assert restored == source


def test_a_placeholder_is_letters_and_digits_only() -> None:
    registry = Registry()
    protected = registry.protect('<a href=\'{{ link("x", tag="y") }}\'>{% if a < b %}</a>')
    assert protected.text == f"<a href='{PREFIX}0q'>{PREFIX}1q</a>"
    assert f"{PREFIX}0q".isalnum()


def test_comments_disappear_and_lines_map_back() -> None:
    registry = Registry()
    source = "one\n{# a\ncomment #}two\n{% if x\n and y %}three\n{{ lead.frist_name }}\n"
    protected = registry.protect(source, "t.mjml")
    assert "comment" not in protected.text
    lines = protected.text.split("\n")
    number = next(i for i, line in enumerate(lines, 1) if PREFIX in line and "three" not in line)
    assert protected.source_line(number) == 6
    token = registry.tokens[-1]
    assert token.text == "{{ lead.frist_name }}" and token.line == 6 and token.file == "t.mjml"


def test_structure_tags_stay_live_when_asked() -> None:
    registry = Registry()
    source = '{% extends "layouts/base.mjml" %}{% block body %}{{ x }}{{ super() }}{% endblock %}'
    protected = registry.protect(source, keep=is_structure)
    assert protected.text.startswith('{% extends "layouts/base.mjml" %}{% block body %}')
    assert "{{ super() }}" in protected.text and "{{ x }}" not in protected.text


def test_strings_and_brackets_do_not_end_a_tag() -> None:
    spans = list(scan('a {{ "}}" }} b {% set d = {"k": {"j": 1}} %} c'))
    assert [s.kind for s in spans] == ["expr", "block"]
    assert spans[0].end == len('a {{ "}}" }}')


def test_an_unclosed_tag_is_reported_with_its_position() -> None:
    with pytest.raises(UnclosedTag) as caught:
        Registry().protect("ok\n{{ lead.first_name ")
    assert caught.value.position == 3


def test_the_reserved_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="reserves"):
        Registry().protect(f"text {PREFIX}1q")


def test_stray_delimiters_print_as_themselves() -> None:
    from jinja2 import Environment

    text = "a {{ b {% c {# d"
    assert Environment().from_string(escape_stray_delimiters(text)).render() == text
