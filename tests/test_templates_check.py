"""`check_templates`: each kind of bad template is one line naming the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripengine.campaigns import Campaign, load_campaigns
from dripengine.cli.scaffold import SKELETON
from dripengine.config import SenderSettings
from dripengine.templates import check_templates
from dripengine.templates.compile import CACHE

ADDRESS = "Acme GmbH, Example Street 1, 10115 Berlin, Germany"
LAYOUT = """\
<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        {% block body %}{% endblock %}
        <mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ postal_address }}</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def campaign(
    template: str = "step.mjml", subject: str = "Hello {{ lead.first_name | default('there') }}"
) -> Campaign:
    return Campaign.model_validate(
        {
            "id": "test-campaign",
            "name": "Test",
            "audience": {"stages": ["sql"]},
            "send": {"from": "Acme <hello@acme.example>"},
            "tracks": {
                "cold": {
                    "min_score": 0,
                    "steps": [
                        {"id": "one", "wait": "1d", "template": template, "subject": subject}
                    ],
                }
            },
        }
    )


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "layouts").mkdir(parents=True)
    (root / "layouts" / "base.mjml").write_text(LAYOUT)
    CACHE.data.clear()
    return root


def check(root: Path, body: str | bytes, **kwargs: str) -> list[str]:
    path = root / "step.mjml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body)
    return check_templates([campaign(**kwargs)], root, postal_address=ADDRESS)


def child(*lines: str) -> str:
    return (
        "\n".join(
            ['{% extends "layouts/base.mjml" %}', "{% block body %}", *lines, "{% endblock %}"]
        )
        + "\n"
    )


def test_a_good_template_has_no_problems(templates: Path) -> None:
    assert (
        check(templates, child("<mj-text>Hi {{ lead.first_name | default('there') }}</mj-text>"))
        == []
    )


def test_broken_mjml(templates: Path) -> None:
    problems = check(
        templates, child("<mj-text>one</mj-text>", "<mj-text>never closed", "<mj-text>x</mj-text>")
    )
    assert len(problems) == 1
    assert problems[0].startswith("templates/step.mjml:")
    assert "MJML does not compile" in problems[0] and "closed" in problems[0]


def test_jinja_syntax_error(templates: Path) -> None:
    problems = check(
        templates, child("<mj-text>ok</mj-text>", "<mj-text>{% if lead.company %}x</mj-text>")
    )
    assert problems == [problems[0]] and problems[0].startswith("templates/step.mjml:")
    assert "Jinja syntax error" in problems[0] and "endif" in problems[0]


def test_unknown_filter(templates: Path) -> None:
    problems = check(
        templates, child("<mj-text>ok</mj-text>", "<mj-text>{{ lead.company | uper }}</mj-text>")
    )
    assert problems == [
        "templates/step.mjml:4: No filter named 'uper': check the spelling (Jinja filters: default, upper, title, …)"
    ]


def test_missing_include(templates: Path) -> None:
    problems = check(
        templates, child("<mj-text>ok</mj-text>", '{% include "partials/nope.mjml" %}')
    )
    assert problems == [
        'templates/step.mjml:4: "partials/nope.mjml" not found: templates/partials/nope.mjml does not '
        "exist (names in extends and include are relative to the templates folder)"
    ]


def test_missing_layout(templates: Path) -> None:
    problems = check(
        templates, '\n{% extends "layouts/nope.mjml" %}\n{% block body %}{% endblock %}\n'
    )
    assert len(problems) == 1 and problems[0].startswith(
        'templates/step.mjml:2: "layouts/nope.mjml" not found'
    )


def test_not_utf8(templates: Path) -> None:
    problems = check(
        templates, child("<mj-text>ok</mj-text>", "<mj-text>caf\xe9</mj-text>").encode("latin-1")
    )
    assert problems == [
        "templates/step.mjml:4: the file is not UTF-8 text (byte 0xe9); save it as UTF-8"
    ]


def test_undefined_variable(templates: Path) -> None:
    problems = check(
        templates, child("<mj-text>ok</mj-text>", "<mj-text>{{ lead.frist_name }}</mj-text>")
    )
    assert problems == [
        'templates/step.mjml:4: {{ lead.frist_name }}: "frist_name" is undefined: did you mean "first_name"?'
    ]


def test_a_typo_is_caught_even_behind_a_default(templates: Path) -> None:
    body = child(
        "<mj-text>{{ lead.industry | default('your field') }}</mj-text>",  # a free attribute: fine
        "<mj-text>{{ sender.nmae | default('us') }}</mj-text>",
        "<mj-text>{{ lead.frist_name | default('there') }}</mj-text>",
    )
    problems = check(templates, body)
    assert problems == [
        'templates/step.mjml:4: {{ sender.nmae | default(\'us\') }}: "nmae" is undefined: did you mean "name"?'
    ]
    problems = check(templates, body.replace("sender.nmae", "sender.name"))
    assert problems == [
        "templates/step.mjml:5: {{ lead.frist_name | default('there') }}: \"frist_name\" is undefined: "
        'did you mean "first_name"?'
    ]


def test_undefined_variable_in_the_subject(templates: Path) -> None:
    problems = check(templates, child("<mj-text>ok</mj-text>"), subject="Hi {{ lead.frist_name }}")
    assert problems == [
        'campaign test-campaign: tracks.cold.steps[0].subject: "frist_name" is undefined: '
        'did you mean "first_name"?'
    ]


def test_a_subject_field_without_a_default(templates: Path) -> None:
    problems = check(templates, child("<mj-text>ok</mj-text>"), subject="Hi {{ lead.first_name }}")
    assert problems == [
        'campaign test-campaign: tracks.cold.steps[0].subject: "Hi {{ lead.first_name }}" prints '
        "nothing for a lead without \"first_name\": give it a default, e.g. | default('…'), or test it with {% if … %}"
    ]


def test_a_field_without_a_default(templates: Path) -> None:
    problems = check(
        templates, child("<mj-text>ok</mj-text>", "<mj-text>Hi {{ lead.company }}</mj-text>")
    )
    assert problems == [
        'templates/step.mjml:4: {{ lead.company }} prints nothing for a lead without "company": give it '
        "a default, e.g. | default('…'), or test it with {% if … %}"
    ]
    guarded = child("<mj-text>{% if lead.company %}At {{ lead.company }}{% endif %}</mj-text>")
    assert check(templates, guarded) == []


def test_missing_unsubscribe_link_and_postal_address(templates: Path) -> None:
    (templates / "layouts" / "bare.mjml").write_text(
        "<mjml><mj-body><mj-section><mj-column>{% block body %}{% endblock %}"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    problems = check(
        templates,
        '{% extends "layouts/bare.mjml" %}{% block body %}<mj-text>x</mj-text>{% endblock %}',
    )
    assert problems[0].startswith("templates/step.mjml:1: the email has no unsubscribe link")
    assert problems[1].startswith(
        "templates/step.mjml:1: the email does not show the sender's postal address"
    )
    assert len(problems) == 2


def test_missing_unsubscribe_link_in_the_text_part(templates: Path) -> None:
    (templates / "step.txt").write_text("Hi\n{{ postal_address }}\n")
    problems = check(templates, child("<mj-text>ok</mj-text>"))
    assert problems == [
        "templates/step.mjml:1: the plain-text part has no unsubscribe link: add {{ unsubscribe_url }} to the .txt template"
    ]


def test_the_example_templates_pass_with_the_shipped_postal_address() -> None:
    skeleton = Path(SKELETON)
    campaigns = load_campaigns(skeleton / "campaigns", templates_dir=skeleton / "templates")
    address = SenderSettings().postal_address
    assert address and "Berlin" in address
    problems = check_templates(
        campaigns,
        skeleton / "templates",
        postal_address=address,
        campaigns_dir=skeleton / "campaigns",
    )
    assert problems == []
    assert sum(len(t.steps) for c in campaigns for t in c.tracks.values()) >= 10


def test_a_template_reaching_for_the_server_is_a_validation_error(templates: Path) -> None:
    problems = check(
        templates,
        child(
            "<mj-text>Hi</mj-text>",
            "<mj-text>{{ cycler.__init__.__globals__.os.popen('id').read() }}</mj-text>",
        ),
    )
    assert len(problems) == 1
    assert problems[0].startswith("templates/step.mjml:4:")
    assert "unsafe" in problems[0]
