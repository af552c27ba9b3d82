"""A misspelt MJML tag or attribute, or a tag where MJML does not allow it, is refused with the file,
the line and the nearest valid name (issue 15, item 1); MRML would drop it from the email silently.

The rules come from MJML's own lists (dripengine/templates/mjml_spec.json, generated from the mjml
npm packages by scripts/mjml-spec/regenerate), so these tests check the behaviour, not the list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dripengine.cli import main
from dripengine.templates.compile import CACHE
from dripengine.templates.errors import TemplateError
from dripengine.templates.mjml_rules import problems, spec
from dripengine.templates.render import TemplateEngine

STEP = "templates/lost-sql/breakup.mjml"
LAYOUT = "templates/layouts/base.mjml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DRIP_CONFIG", raising=False)
    monkeypatch.delenv("DRIP_DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "p")
    CACHE.data.clear()
    return tmp_path / "p"


def validate() -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["campaigns", "validate"])
    return result.exit_code, result.stderr.splitlines()


def edit(project: Path, name: str, old: str, new: str) -> int:
    """Replace the first ``old`` in ``name``; the 1-based line it was on."""
    path = project / name
    text = path.read_text()
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old) :])
    return text.count("\n", 0, at) + 1


def test_the_shipped_templates_follow_mjml_rules(project: Path) -> None:
    assert validate() == (0, [])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "<mj-button href",
            "<mj-buton href",
            "unknown tag <mj-buton> (did you mean <mj-button>?)",
        ),
        ("<mj-text>Hi", "<mj-txt>Hi", "unknown tag <mj-txt> (did you mean <mj-text>?)"),
        (
            "<mj-text>Hi",
            '<mj-text colour="red">Hi',
            '<mj-text> has no attribute "colour" (did you mean "color"?)',
        ),
        (
            "<mj-button href",
            '<mj-button align="centre" href',
            'align="centre" on <mj-button> is not one of left, center, right '
            '(did you mean "center"?)',
        ),
        (
            "<mj-text>Hi",
            "<div>Hi</div><mj-text>Hi",
            "<div> straight inside <mj-column> is not MJML and is dropped from the email: "
            "put HTML inside <mj-text> (or <mj-raw>)",
        ),
        (
            "<mj-text>Hi",
            "<mj-section><mj-column></mj-column></mj-section><mj-text>Hi",
            "<mj-section> cannot be inside <mj-column>; it goes inside <mj-body>, <mj-wrapper>",
        ),
    ],
)
def test_each_mistake_is_named_at_its_line_with_the_fix(
    project: Path, old: str, new: str, message: str
) -> None:
    line = edit(project, STEP, old, new)
    code, errors = validate()
    assert code == 1
    assert f"{STEP}:{line}: {message}" in errors


def test_a_mistake_in_the_layout_is_named_in_the_layout_not_in_each_step(project: Path) -> None:
    line = edit(project, LAYOUT, "<mj-column>", "<mj-column><div>logo</div>")
    code, errors = validate()
    assert code == 1
    mjml = [e for e in errors if "<div>" in e]
    assert mjml == [
        f"{LAYOUT}:{line}: <div> straight inside <mj-column> is not MJML and is "
        "dropped from the email: put HTML inside <mj-text> (or <mj-raw>)"
    ]


def test_every_mistake_of_a_template_is_listed_not_only_the_first(project: Path) -> None:
    first = edit(project, STEP, "<mj-button href", "<mj-buton href")
    second = edit(project, STEP, "<mj-text>Hi", '<mj-text colour="red">Hi')
    code, errors = validate()
    assert code == 1
    assert f"{STEP}:{first}: unknown tag <mj-buton> (did you mean <mj-button>?)" in errors
    assert any(e.startswith(f"{STEP}:{second}: <mj-text> has no attribute") for e in errors)


def test_preview_and_sending_refuse_it_too(project: Path) -> None:
    edit(project, STEP, "<mj-button href", "<mj-buton href")
    engine = TemplateEngine(project / "templates")
    with pytest.raises(TemplateError, match=r"unknown tag <mj-buton>"):
        engine.render("lost-sql/breakup.mjml", {"lead": {}, "unsubscribe_url": "u"}, subject="s")


def test_jinja_in_attributes_and_html_inside_ending_tags_is_left_alone() -> None:
    source = """<mjml lang="en">
  <mj-head><mj-attributes><mj-all font-family="Arial" /><mj-class name="x" color="red" />
    <mj-button align="left" /></mj-attributes><mj-style>a > b { color: red }</mj-style></mj-head>
  <mj-body>
    <mj-section zqjdjn3q css-class="hero">
      <mj-column>
        <mj-button href="zqjdjn1q" align="zqjdjn2q">Go</mj-button>
        <mj-text><div class="x"><p>Any <b>HTML</b> <mj-whatever> here</p></div></mj-text>
        <mj-raw><table><tr><td>raw</td></tr></table></mj-raw>
        <mj-image src="a.png" />
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"""
    assert problems(source) == []


def test_defaults_under_mj_attributes_are_checked_too() -> None:
    source = (
        '<mjml><mj-head><mj-attributes><mj-text colour="red" /></mj-attributes></mj-head></mjml>'
    )
    assert [p.message for p in problems(source)] == [
        '<mj-text> has no attribute "colour" (did you mean "color"?)'
    ]


def test_the_rules_are_mjmls_own_list() -> None:
    rules = spec()
    assert rules.source.startswith("mjml 4.")
    # every component MJML registers is known, with its attributes: not a hand-typed subset
    assert len(rules.attributes) >= 30
    assert {"mj-accordion", "mj-carousel", "mj-hero", "mj-navbar", "mj-social"} <= rules.tags
