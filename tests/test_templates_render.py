"""Compile once, render per lead: layouts, MRML's traps, autoescape, text, subject, links."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import StrictUndefined

import dripengine.templates.compile as compile_module
from dripengine.templates import (
    UTM,
    Link,
    TemplateEngine,
    TemplateError,
    add_query,
    clean_subject,
    sample_context,
)
from dripengine.templates.compile import _LRU, CACHE

ADDRESS = "Acme GmbH, Example Street 1, 10115 Berlin, Germany"
LAYOUT = """\
<mjml>
  <mj-head>
    <mj-preview>{% block preview %}{% endblock %}</mj-preview>
  </mj-head>
  <mj-body>
    <mj-section>
      <mj-column>
        {% block body %}{% endblock %}
      </mj-column>
    </mj-section>
    <mj-section>
      <mj-column>
        <mj-text>
          <a href="{{ unsubscribe_url }}">Unsubscribe</a><br />
          {{ postal_address }}
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def page(body: str, preview: str = "") -> str:
    return (
        '{% extends "layouts/base.mjml" %}\n'
        f"{{% block preview %}}{preview}{{% endblock %}}\n"
        f"{{% block body %}}\n{body}\n{{% endblock %}}\n"
    )


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "layouts").mkdir(parents=True)
    (root / "layouts" / "base.mjml").write_text(LAYOUT)
    CACHE.data.clear()
    return root


def write(root: Path, name: str, text: str) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return name


def context(**lead: object) -> dict[str, object]:
    ctx = sample_context(postal_address=ADDRESS)
    ctx["lead"] = {**ctx["lead"], **lead}
    return ctx


def render(root: Path, name: str, subject: str = "Hello", **kwargs: object):  # type: ignore[no-untyped-def]
    engine = TemplateEngine(root, undefined=StrictUndefined)
    return engine.render(name, kwargs.pop("ctx", None) or context(), subject=subject, **kwargs)  # type: ignore[arg-type]


# --- compile once -------------------------------------------------------------------------


def test_mjml_is_compiled_once_for_many_leads(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = compile_module.mjml_to_html

    def counting(source: str) -> str:
        calls.append(source)
        return real(source)

    monkeypatch.setattr(compile_module, "mjml_to_html", counting)
    name = write(templates, "a.mjml", page("<mj-text>Hi {{ lead.first_name }}</mj-text>"))
    engine = TemplateEngine(templates)
    names = [f"Lead{i}" for i in range(25)]
    htmls = [engine.render(name, context(first_name=n), subject="s").html for n in names]
    assert len(calls) == 1
    assert all(f"Hi {n}" in html for n, html in zip(names, htmls, strict=True))
    # a second engine (another worker thread, a preview) hits the content-hash cache
    TemplateEngine(templates).render(name, context(), subject="s")
    assert len(calls) == 1
    # an edited template is a new version: compiled once more
    write(templates, "a.mjml", page("<mj-text>Hello {{ lead.first_name }}</mj-text>"))
    import os

    os.utime(templates / name, (1, 1))
    assert "Hello Jane" in engine.render(name, context(), subject="s").html
    assert len(calls) == 2


def test_the_cache_key_is_the_resolved_source(templates: Path) -> None:
    write(templates, "a.mjml", page("<mj-text>{{ lead.company }}</mj-text>"))
    write(templates, "b.mjml", page("<mj-text>{{ lead.company }}</mj-text>"))
    a, _ = compile_module.compile_template(templates, "a.mjml", cache=_LRU(8))
    b, _ = compile_module.compile_template(templates, "b.mjml", cache=_LRU(8))
    assert a.digest == b.digest
    write(templates, "layouts/base.mjml", LAYOUT.replace("<br />", "<br />&nbsp;"))
    c, _ = compile_module.compile_template(templates, "a.mjml", cache=_LRU(8))
    assert c.digest != a.digest  # a layout change is a new version of every template using it


# --- layouts and partials -----------------------------------------------------------------


def test_layout_block_and_include_carry_the_footer_once(templates: Path) -> None:
    write(templates, "partials/signature.mjml", "<mj-text>Best, {{ sender.name }}</mj-text>")
    name = write(
        templates,
        "x.mjml",
        page(
            '<mj-text>Hi {{ lead.first_name }}</mj-text>\n{% include "partials/signature.mjml" %}'
        ),
    )
    email = render(templates, name, ctx=context(first_name="Ada"))
    assert "Hi Ada" in email.html and "Best, Acme Growth Team" in email.html
    assert 'href="http://127.0.0.1:8080/u/sample-unsubscribe-token"' in email.html
    assert email.html.count(ADDRESS) == 1


def test_lead_values_are_rendered_per_lead_not_baked_in(templates: Path) -> None:
    name = write(templates, "x.mjml", page("<mj-text>Hi {{ lead.first_name }}</mj-text>"))
    engine = TemplateEngine(templates)
    assert "Hi Ada" in engine.render(name, context(first_name="Ada"), subject="s").html
    assert "Hi Bob" in engine.render(name, context(first_name="Bob"), subject="s").html


def test_missing_fields_fall_back_to_their_default(templates: Path) -> None:
    name = write(
        templates, "x.mjml", page("<mj-text>Hi {{ lead.company | default('your team') }}</mj-text>")
    )
    ctx = sample_context(postal_address=ADDRESS, lead={"email": "a@b.example", "company": ""})
    assert "Hi your team" in TemplateEngine(templates).render(name, ctx, subject="s").html


# --- MRML's measured problems -------------------------------------------------------------


def test_less_than_inside_a_block_tag_compiles(templates: Path) -> None:
    name = write(
        templates,
        "x.mjml",
        page("<mj-text>{% if lead.score < 50 %}LOW{% else %}HIGH{% endif %}</mj-text>"),
    )
    engine = TemplateEngine(templates)
    assert "LOW" in engine.render(name, context(score=10), subject="s").html
    assert "HIGH" in engine.render(name, context(score=90), subject="s").html


def test_double_quotes_in_a_single_quoted_attribute_survive(templates: Path) -> None:
    name = write(
        templates,
        "x.mjml",
        page(
            """<mj-button href='{{ link("https://acme.example/pricing", tag="pricing") }}'>Go</mj-button>"""
        ),
    )
    email = render(templates, name)
    assert 'href="https://acme.example/pricing"' in email.html
    assert "\\" not in email.html.split("<body", 1)[1]
    assert email.links == (Link("https://acme.example/pricing", "pricing", 0),)


def test_jinja_in_a_size_attribute_is_refused_with_its_line(templates: Path) -> None:
    source = (
        '{% extends "layouts/base.mjml" %}\n{% block body %}\n'
        '<mj-text>a</mj-text>\n</mj-column><mj-column width="{{ lead.width }}">\n<mj-text>b</mj-text>\n'
        "{% endblock %}\n"
    )
    name = write(templates, "x.mjml", source)
    with pytest.raises(TemplateError) as caught:
        render(templates, name)
    assert str(caught.value).startswith(
        "templates/x.mjml:4: {{ lead.width }} in the width attribute of <mj-column>"
    )
    assert "fixed value" in str(caught.value)


def test_a_block_tag_in_an_attribute_mjml_copies_is_refused(templates: Path) -> None:
    name = write(
        templates,
        "x.mjml",
        page(
            '<mj-button href="https://a.example" background-color="{% if lead.score > 5 %}red{% endif %}">x</mj-button>'
        ),
    )
    with pytest.raises(
        TemplateError, match=r"templates/x.mjml:4: \{% if lead.score > 5 %\}.*times"
    ):
        render(templates, name)


# --- per-email output ---------------------------------------------------------------------


@pytest.mark.parametrize("evil", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_lead_data_never_becomes_markup(templates: Path, evil: str) -> None:
    name = write(
        templates,
        "x.mjml",
        page(
            "<mj-text>Hi {{ lead.first_name }} at {{ lead.company }}</mj-text>"
            '<mj-image src="https://a.example/i.png" alt="{{ lead.company }}" />'
        ),
    )
    email = render(
        templates, name, ctx=context(first_name=evil, company=evil), subject="{{ lead.first_name }}"
    )
    assert "<script>" not in email.html and "<img src=x" not in email.html
    assert "&lt;script&gt;" in email.html or "&#34;&gt;&lt;img" in email.html
    assert evil in email.text  # plain text shows the value as it is
    assert email.subject == evil.strip()


def test_subject_is_one_clean_line() -> None:
    assert (
        clean_subject("Hi\r\nBcc: x@y.example\t\x00\x1b[31m  there\u202e")
        == "Hi Bcc: x@y.example [31m there"
    )
    long = clean_subject("word " * 100)
    assert len(long) <= 200 and long.endswith("…") and "  " not in long


def test_subject_is_rendered_and_sanitised(templates: Path) -> None:
    name = write(templates, "x.mjml", page("<mj-text>x</mj-text>"))
    email = render(
        templates,
        name,
        subject="Still thinking about {{ lead.company }}?",
        ctx=context(company="Ev\nil\r\nCo"),
    )
    assert email.subject == "Still thinking about Ev il Co?"


def test_text_part_is_derived_from_the_html_with_readable_links(templates: Path) -> None:
    name = write(
        templates,
        "x.mjml",
        page(
            "<mj-text>Hi {{ lead.first_name }},</mj-text>\n"
            "<mj-text>{% if lead.score > 30 %}You look busy.{% endif %}</mj-text>\n"
            "<mj-button href=\"{{ link('https://acme.example/guide', tag='guide') }}\">Read the guide</mj-button>"
        ),
    )
    email = render(templates, name, ctx=context(first_name="Ada", score=40))
    assert "Hi Ada," in email.text and "You look busy." in email.text
    assert "Read the guide (https://acme.example/guide)" in email.text
    assert "Unsubscribe (http://127.0.0.1:8080/u/sample-unsubscribe-token)" in email.text
    assert ADDRESS in email.text and "<" not in email.text
    quiet = render(templates, name, ctx=context(first_name="Ada", score=10))
    assert "You look busy." not in quiet.text
    compiled, _ = compile_module.compile_template(templates, name)
    assert (
        compiled.text is not None and not compiled.text_from_file
    )  # derived once, rendered per lead


def test_text_part_comes_from_a_sibling_txt_template(templates: Path) -> None:
    name = write(templates, "x.mjml", page("<mj-text>HTML copy</mj-text>"))
    write(
        templates,
        "x.txt",
        "Hi {{ lead.first_name }} <b>,\n{{ link('https://acme.example/a', tag='a') }}\n"
        "Unsubscribe: {{ unsubscribe_url }}\n{{ postal_address }}\n",
    )
    email = render(templates, name, ctx=context(first_name="Ada"), utm=UTM("drip"))
    assert email.text.startswith("Hi Ada <b>,\n")  # no HTML escaping in plain text
    assert "HTML copy" not in email.text
    assert "\nhttps://acme.example/a?utm_source=drip&utm_medium=email" in email.text
    assert email.links == ()  # links are recorded from the HTML only


def test_preheader_is_the_preview_block(templates: Path) -> None:
    name = write(
        templates, "x.mjml", page("<mj-text>x</mj-text>", preview="For {{ lead.company }}\n today")
    )
    email = render(templates, name, ctx=context(company="Globex"))
    assert email.preheader == "For Globex today"
    assert "For Globex" in email.html


# --- links ----------------------------------------------------------------------------------


def test_links_are_recorded_with_tags_and_get_utm(templates: Path) -> None:
    name = write(
        templates,
        "x.mjml",
        page(
            "<mj-button href=\"{{ link('https://acme.example/pricing?plan=team#top', tag='pricing') }}\">P</mj-button>\n"
            '<mj-text><a href="https://acme.example/blog?utm_source=blog&amp;x=1">blog</a>\n'
            '<a href="mailto:sales@acme.example">mail</a> <a href="tel:+4930123">call</a></mj-text>'
        ),
    )
    email = render(templates, name, utm=UTM("dripengine"))
    assert email.links == (
        Link("https://acme.example/pricing?plan=team#top", "pricing", 0),
        Link("https://acme.example/blog?utm_source=blog&x=1", None, 1),
    )
    assert (
        'href="https://acme.example/pricing?plan=team&amp;utm_source=dripengine&amp;utm_medium=email'
        '&amp;utm_campaign=sample-campaign&amp;utm_content=sample-step#top"' in email.html
    )
    assert "utm_source=blog&amp;x=1&amp;utm_medium=email" in email.html  # the author's source wins
    assert 'href="mailto:sales@acme.example"' in email.html and 'href="tel:+4930123"' in email.html
    assert 'href="http://127.0.0.1:8080/u/sample-unsubscribe-token"' in email.html


def test_rewrite_hook_sees_every_link_but_not_the_unsubscribe_link(templates: Path) -> None:
    name = write(
        templates,
        "x.mjml",
        page(
            "<mj-button href=\"{{ link('https://acme.example/demo', tag='demo') }}\">Demo</mj-button>"
        ),
    )
    seen: list[Link] = []

    def track(link: Link, url: str) -> str:
        seen.append(link)
        return f"https://t.example/c/{link.position}"

    email = render(templates, name, rewrite_link=track)
    assert seen == [Link("https://acme.example/demo", "demo", 0)]
    assert 'href="https://t.example/c/0"' in email.html
    assert "Demo (https://t.example/c/0)" in email.text
    assert "sample-unsubscribe-token" in email.html


def test_add_query_merges_and_leaves_other_schemes_alone() -> None:
    params = {"utm_source": "d", "utm_medium": "email"}
    assert (
        add_query("https://a.example/p?x=1#f", params)
        == "https://a.example/p?x=1&utm_source=d&utm_medium=email#f"
    )
    assert (
        add_query("https://a.example/?utm_source=own", params)
        == "https://a.example/?utm_source=own&utm_medium=email"
    )
    assert add_query("mailto:a@b.example", params) == "mailto:a@b.example"
    assert add_query("tel:+491", params) == "tel:+491"


# --- errors at the right line ----------------------------------------------------------------


def test_undefined_variable_names_the_source_line(templates: Path) -> None:
    body = "<mj-text>Hi</mj-text>\n<mj-text>\n  Dear {{ lead.frist_name }}\n</mj-text>"
    name = write(templates, "x.mjml", page(body))
    with pytest.raises(TemplateError) as caught:
        render(templates, name)
    assert str(caught.value).startswith(
        'templates/x.mjml:6: {{ lead.frist_name }}: "frist_name" is undefined'
    )


def test_undefined_variable_in_a_partial_names_the_partial(templates: Path) -> None:
    write(
        templates, "partials/p.mjml", "<mj-text>ok</mj-text>\n<mj-text>{{ sendr.name }}</mj-text>\n"
    )
    name = write(templates, "x.mjml", page('{% include "partials/p.mjml" %}'))
    with pytest.raises(
        TemplateError,
        match=r'^templates/partials/p.mjml:2: \{\{ sendr.name \}\}: "sendr" is undefined',
    ):
        render(templates, name)


def test_production_rendering_prints_nothing_for_an_unknown_field(templates: Path) -> None:
    name = write(templates, "x.mjml", page("<mj-text>Hi {{ lead.nickname }}!</mj-text>"))
    email = TemplateEngine(templates).render(name, context(), subject="s")
    assert "Hi !" in email.html


def _one_line_reference(text: str) -> str:
    """one_line as first written: every character looked at (the fast path must agree)."""
    import re
    import unicodedata

    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
        for c in text
        if unicodedata.category(c) != "Cf" or c in "\u200d"
    )
    return re.sub(r"\s+", " ", cleaned).strip()


@given(
    st.text(
        alphabet=st.sampled_from(
            list("ab \t\n\r\x0b\x0c\x00\x1f\x7f\x85\xa0\u2028\u2029\u200b\u200d\u2060é")
        )
        | st.characters(),
        max_size=60,
    )
)
def test_one_line_agrees_with_looking_at_every_character(text: str) -> None:
    from dripengine.templates.text import one_line

    assert one_line(text) == _one_line_reference(text)


# --- the sandbox (issue 12, finding 8) ----------------------------------------------------

ESCAPES = [
    "{{ cycler.__init__.__globals__.os.popen('echo pwned').read() }}",
    "{{ lipsum.__globals__['os'].popen('echo pwned').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('echo pwned').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% set x = lead.update({'email': 'evil@x.example'}) %}{{ lead.email }}",
]


@pytest.mark.parametrize("escape", ESCAPES)
def test_a_template_cannot_reach_the_server(templates: Path, escape: str) -> None:
    name = write(templates, "x.mjml", page(f"<mj-text>{escape}</mj-text>"))
    with pytest.raises(TemplateError) as caught:
        render(templates, name)
    assert str(caught.value).startswith("templates/x.mjml:")
    assert "unsafe" in str(caught.value) or "not safely callable" in str(caught.value)


@pytest.mark.parametrize("escape", ESCAPES[:2])
def test_a_subject_cannot_reach_the_server(templates: Path, escape: str) -> None:
    name = write(templates, "x.mjml", page("<mj-text>Hi</mj-text>"))
    with pytest.raises(TemplateError, match="unsafe"):
        render(templates, name, subject=f"Hi {escape}")


def test_lead_data_is_never_evaluated_as_a_template(templates: Path) -> None:
    name = write(templates, "x.mjml", page("<mj-text>Hi {{ lead.first_name }}</mj-text>"))
    hostile = "{{ 7*7 }} {% if true %}x{% endif %} {{ cycler.__init__.__globals__ }}"
    email = render(
        templates, name, subject="Hello {{ lead.first_name }}", ctx=context(first_name=hostile)
    )
    assert "{{ 7*7 }}" in email.html and "49" not in email.html
    assert email.subject == f"Hello {hostile}"
    assert "{{ 7*7 }}" in email.text
