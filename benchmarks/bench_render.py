"""Rendering one email (HTML + text + subject) with the compile cache vs compiling MJML per email.

The template is a realistic newsletter-style email (about 150 MJML lines through a layout and a
partial, about 28 KB of HTML): header, hero, two-column feature rows, a customer quote, buttons
with tagged links, conditional copy and a footer with the unsubscribe link and postal address.
``render.cached`` is :class:`~dripengine.templates.TemplateEngine` as the daemon uses it: MJML is
compiled once and every email only runs Jinja. The ``baseline`` compiles per email: the compile
cache is emptied and a fresh engine renders, so MJML, the text-part derivation and the Jinja
compile run each time. Target: the cached path at least 10x faster.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.common import Context, measurement, timed
from dripengine.templates import UTM, TemplateEngine, sample_context
from dripengine.templates.compile import CACHE

TARGET_RATIO = 10.0
SUBJECT = "{{ lead.first_name | default('Hi') }}, a smaller plan for {{ lead.company | default('your team') }}"

LAYOUT = """\
<mjml>
  <mj-head>
    <mj-title>{{ sender.name }}</mj-title>
    <mj-preview>{% block preview %}{% endblock %}</mj-preview>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="16px" line-height="24px" color="#1f2933" />
      <mj-button background-color="#2563eb" color="#ffffff" font-size="16px" border-radius="6px" />
    </mj-attributes>
    <mj-style>
      .muted a { color: #6b7280; }
      .quote { font-style: italic; }
    </mj-style>
  </mj-head>
  <mj-body background-color="#f4f5f7" width="600px">
    <mj-section padding="24px 0 8px">
      <mj-column width="50%">
        <mj-image src="https://acme.example/logo.png" alt="{{ sender.name }}" width="120px" href="https://acme.example" />
      </mj-column>
      <mj-column width="50%">
        <mj-text align="right" font-size="13px">
          <a href="{{ link('https://acme.example/login', tag='login') }}">Sign in</a>
        </mj-text>
      </mj-column>
    </mj-section>
    {% block body %}{% endblock %}
    {% include "partials/footer.mjml" %}
  </mj-body>
</mjml>
"""

FOOTER = """\
<mj-section padding="16px 0">
  <mj-column>
    <mj-divider border-color="#e5e7eb" border-width="1px" />
    <mj-social font-size="12px" icon-size="20px" mode="horizontal">
      <mj-social-element name="linkedin" href="https://acme.example/linkedin">LinkedIn</mj-social-element>
      <mj-social-element name="x" href="https://acme.example/x">X</mj-social-element>
    </mj-social>
    <mj-text css-class="muted" font-size="12px" line-height="18px" color="#6b7280" align="center">
      You are receiving this because you were in touch with {{ sender.name }}.
      <a href="{{ preferences_url }}">Email preferences</a> ·
      <a href="{{ unsubscribe_url }}">Unsubscribe</a> with one click.<br />
      {{ postal_address }}
    </mj-text>
  </mj-column>
</mj-section>
"""

FEATURE = """\
    <mj-section background-color="#ffffff" padding="8px 8px">
      <mj-column width="40%" vertical-align="middle">
        <mj-image src="https://acme.example/img/feature-{n}.png" alt="Feature {n}" border-radius="6px" />
      </mj-column>
      <mj-column width="60%" vertical-align="middle">
        <mj-text font-size="18px" font-weight="bold">{title}</mj-text>
        <mj-text>
          {copy}
          {{% if lead.company %}}Teams like {{{{ lead.company }}}} use it every week.{{% endif %}}
        </mj-text>
        <mj-button href="{{{{ link('https://acme.example/features/{n}', tag='{tag}') }}}}" align="left">
          {button}
        </mj-button>
      </mj-column>
    </mj-section>
"""

FEATURES = [
    (
        "Reason codes that mean something",
        "Every lost deal carries the reason sales gave.",
        "case-study",
        "See how it works",
    ),
    (
        "Sequences that fit the stage",
        "Cold leads learn, warm leads compare, hot leads talk to us.",
        "guide",
        "Read the guide",
    ),
    (
        "Scores that decay",
        "Interest fades; the score does too, so sales gets the leads that are back.",
        "pricing",
        "Compare plans",
    ),
]


def write_templates(root: Path) -> str:
    (root / "layouts").mkdir(parents=True, exist_ok=True)
    (root / "partials").mkdir(parents=True, exist_ok=True)
    (root / "layouts" / "base.mjml").write_text(LAYOUT)
    (root / "partials" / "footer.mjml").write_text(FOOTER)
    features = "".join(
        FEATURE.format(n=n, title=title, copy=copy, tag=tag, button=button)
        for n, (title, copy, tag, button) in enumerate(FEATURES, 1)
    )
    body = f"""\
{{% extends "layouts/base.mjml" %}}
{{% block preview %}}What changed at Acme since we last spoke, {{{{ lead.first_name | default('friend') }}}}.{{% endblock %}}
{{% block body %}}
    <mj-hero mode="fixed-height" height="260px" background-width="600px" background-height="260px"
      background-url="https://acme.example/img/hero.jpg" background-color="#1e3a8a" padding="40px 24px">
      <mj-text color="#ffffff" font-size="28px" line-height="34px" font-weight="bold" align="left">
        Not now is not never, {{{{ lead.first_name | default('there') }}}}.
      </mj-text>
      <mj-button href="{{{{ link('https://acme.example/whats-new', tag='whats-new') }}}}" align="left">
        What is new
      </mj-button>
    </mj-hero>
    <mj-section background-color="#ffffff" padding="16px 8px">
      <mj-column>
        <mj-text>Hi {{{{ lead.first_name | default('there') }}}},</mj-text>
        <mj-text>
          When we last spoke{{% if recycle.reason_label %}}, the answer was "{{{{ recycle.reason_label }}}}"{{% endif %}}.
          That is fair. A few things have changed since, and one of them may matter to
          {{{{ lead.company | default('your team') }}}}.
        </mj-text>
      </mj-column>
    </mj-section>
{features}
    <mj-section background-color="#eef2ff" padding="16px 8px">
      <mj-column>
        <mj-text css-class="quote" font-size="18px" line-height="28px">
          "We had written off half of our lost deals. Three months later, a fifth of them were back
          in the pipeline."
        </mj-text>
        <mj-text font-size="14px">Maria K., Head of Sales Operations</mj-text>
        <mj-button href="https://acme.example/customers/northwind" align="left">Read the story</mj-button>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="16px 8px">
      <mj-column>
        <mj-table font-size="14px">
          <tr style="border-bottom:1px solid #e5e7eb;text-align:left;"><th>Plan</th><th>Seats</th><th>Per month</th></tr>
          <tr><td>Starter</td><td>3</td><td>€49</td></tr>
          <tr><td>Team</td><td>10</td><td>€149</td></tr>
        </mj-table>
        <mj-text>
          {{% if lead.score > 50 %}}You have been reading a lot: shall we talk?{{% else %}}No rush: reply any time.{{% endif %}}
        </mj-text>
        <mj-button href="{{{{ link('https://acme.example/call', tag='demo') }}}}">15 minutes this week?</mj-button>
        <mj-text>Best,<br />{{{{ sender.name }}}}</mj-text>
      </mj-column>
    </mj-section>
{{% endblock %}}
"""
    (root / "email.mjml").write_text(body)
    return "email.mjml"


def _lead(n: int) -> dict[str, Any]:
    return {
        "email": f"lead{n}@example.com",
        "first_name": f"Lead{n}",
        "company": f"Company {n} <GmbH>",
        "score": float(n % 100),
        "attributes": {"industry": "logistics"},
    }


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    root = ctx.tmp / "templates"
    name = write_templates(root)
    utm = UTM("dripengine")
    contexts = [
        sample_context(
            postal_address="Acme GmbH, Example Street 1, 10115 Berlin, Germany", lead=_lead(n)
        )
        for n in range(50)
    ]
    cached_n = ctx.size(5_000, 200)
    naive_n = ctx.size(300, 20)

    engine = TemplateEngine(root)
    first = engine.render(name, contexts[0], subject=SUBJECT, utm=utm)  # compile once, warm up
    lines = sum(1 for _ in (root / name).open()) + sum(
        1 for f in ("layouts/base.mjml", "partials/footer.mjml") for _ in (root / f).open()
    )

    def cached() -> None:
        for i in range(cached_n):
            email = engine.render(name, contexts[i % 50], subject=SUBJECT, utm=utm)
            assert email.text and email.subject

    def per_email() -> None:
        for i in range(naive_n):
            CACHE.data.clear()
            email = TemplateEngine(root).render(name, contexts[i % 50], subject=SUBJECT, utm=utm)
            assert email.text and email.subject

    _, cached_s = timed(cached)
    _, naive_s = timed(per_email)
    cached_us = cached_s / cached_n * 1e6
    naive_us = naive_s / naive_n * 1e6
    ratio = naive_us / cached_us
    shape = {"mjml_lines": lines, "html_bytes": len(first.html.encode())}
    yield measurement("render.cached", cached_us, "µs/email", emails=cached_n, **shape)
    yield measurement(
        "render.compile_per_email",
        naive_us,
        "µs/email",
        emails=naive_n,
        what="MJML compiled per email (cache emptied, fresh engine)",
        **shape,
    )
    yield measurement(
        "render.speedup",
        ratio,
        "x",
        target=TARGET_RATIO,
        meets_target=ratio >= TARGET_RATIO,
    )
