"""What ``drip campaigns validate`` checks in the templates each campaign step uses.

Every step is rendered (HTML, text part, subject) against the sample lead with
:class:`jinja2.StrictUndefined`: broken MJML, a Jinja syntax error, an unknown filter, a missing
include or layout, a file that is not UTF-8 and an undefined variable each come back as one line,
``templates/x.mjml:12: message``, with the fix. Then the rendered email must carry the unsubscribe
link (as an ``href`` in the HTML, and in the text part) and the sender's postal address (in both).
Last, the step is rendered for a lead with nothing but an address: a lead field printed without
``| default(...)`` is reported, because real leads often miss fields.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined

from dripengine.campaigns import Campaign
from dripengine.templates.context import checked_context, sample_context, sparse_context
from dripengine.templates.environment import NeedsDefault, shown_name
from dripengine.templates.errors import TemplateError
from dripengine.templates.links import utm_from
from dripengine.templates.render import RenderedEmail, TemplateEngine

_SPACE = re.compile(r"\s+")


def check_templates(
    campaigns: Iterable[Campaign],
    templates_dir: Path,
    *,
    postal_address: str,
    base_url: str = "http://127.0.0.1:8080",
    campaigns_dir: Path | None = None,
) -> list[str]:
    """One line per problem in the templates and subjects the campaigns' steps use."""
    templates_dir = Path(templates_dir)
    strict = TemplateEngine(templates_dir, undefined=StrictUndefined, check_files=False)
    sparse = TemplateEngine(templates_dir, undefined=NeedsDefault, check_files=False)
    problems: list[str] = []

    def add(problem: str) -> None:
        if problem not in problems:
            problems.append(problem)

    for campaign in campaigns:
        name, address = parseaddr(campaign.send.from_)
        for track_name, track in campaign.tracks.items():
            for index, step in enumerate(track.steps):
                kwargs: dict[str, Any] = {
                    "postal_address": postal_address,
                    "campaign_id": campaign.id,
                    "campaign_name": campaign.name,
                    "step_id": step.id,
                    "track": track_name,
                    "sender_name": name or address,
                    "sender_email": address,
                    "base_url": base_url,
                }
                at = f"tracks.{track_name}.steps[{index}]"
                versions = [(step.template, step.subject, f"{at}.subject", None)] + [
                    (
                        variant.template or step.template,
                        variant.subject or step.subject,
                        f"{at}.variants[{i}].subject" if variant.subject else f"{at}.subject",
                        variant.id if variant.subject else None,
                    )
                    for i, variant in enumerate(step.variants or [])
                ]
                for template, subject, field, variant_id in versions:
                    subject_at = _subject_location(
                        campaigns_dir, campaign.id, step.id, field, variant_id
                    )
                    _check_one(
                        strict, sparse, (template, subject), kwargs, campaign, add, subject_at
                    )
    return problems


def _check_one(
    strict: TemplateEngine,
    sparse: TemplateEngine,
    email_of: tuple[str, str],
    kwargs: dict[str, Any],
    campaign: Campaign,
    add: Callable[[str], None],
    subject_at: str,
) -> None:
    """One email of a step (its own, or a variant's: ``(template, subject)``): rendered
    strictly, checked for compliance, and rendered for a lead with nothing but an address."""
    template, subject = email_of
    context = checked_context(sample_context(**kwargs))
    try:
        email = strict.render(template, context, subject=subject, utm=utm_from(campaign.send.utm))
    except TemplateError as exc:
        for error in (exc, *exc.others):
            add(_located(error, subject_at))
        return
    for problem in compliance_problems(email, context, shown_name(strict.templates_dir, template)):
        add(problem)
    try:
        sparse.render(template, sparse_context(**kwargs), subject=subject)
    except TemplateError as exc:
        add(_needs_default(exc, subject_at))


def compliance_problems(email: RenderedEmail, context: dict[str, Any], shown: str) -> list[str]:
    """What a marketing email must show: the unsubscribe link and the sender's postal address."""
    problems: list[str] = []
    unsubscribe = str(context["unsubscribe_url"])
    if f'href="{html.escape(unsubscribe)}"' not in email.html:
        problems.append(
            f"{shown}:1: the email has no unsubscribe link: every marketing email needs "
            '<a href="{{ unsubscribe_url }}">Unsubscribe</a> (layouts/base.mjml has one in its footer)'
        )
    elif unsubscribe not in email.text:
        problems.append(
            f"{shown}:1: the plain-text part has no unsubscribe link: add {{{{ unsubscribe_url }}}} "
            "to the .txt template"
        )
    address = _SPACE.sub(" ", str(context["postal_address"])).strip()
    if html.escape(address, quote=False) not in _SPACE.sub(" ", email.html):
        problems.append(
            f"{shown}:1: the email does not show the sender's postal address ({address}): put "
            "{{ postal_address }} in the footer (layouts/base.mjml has it)"
        )
    elif address not in _SPACE.sub(" ", email.text):
        problems.append(
            f"{shown}:1: the plain-text part does not show the sender's postal address: add "
            "{{ postal_address }} to the .txt template"
        )
    return problems


def _located(exc: TemplateError, subject_at: str) -> str:
    if exc.file.startswith("subject"):
        return f"{subject_at}: {exc.detail}"
    return str(exc)


def _needs_default(exc: TemplateError, subject_at: str) -> str:
    if exc.undefined is None:
        return _located(exc, subject_at)
    expression = exc.expression or exc.undefined
    message = (
        f'{expression} prints nothing for a lead without "{exc.undefined}": give it a default, '
        f"e.g. | default('…'), or test it with {{% if … %}}"
    )
    if exc.file.startswith("subject"):
        return f"{subject_at}: {message}"
    where = f"{exc.file}:{exc.line}" if exc.line else exc.file
    return f"{where}: {message}"


def _subject_location(
    campaigns_dir: Path | None,
    campaign_id: str,
    step_id: str,
    field: str,
    variant_id: str | None = None,
) -> str:
    """``campaigns/x.yaml:31: tracks.cold.steps[0].subject``, as near as the file text tells."""
    if campaigns_dir is not None and Path(campaigns_dir).is_dir():
        directory = Path(campaigns_dir)
        folder = directory.absolute().name if directory.name in ("", ".", "..") else directory.name
        id_line = re.compile(rf"^id:\s*[\"']?{re.escape(campaign_id)}[\"']?\s*(#.*)?$", re.M)
        step_line = re.compile(rf"^\s*-?\s*id:\s*[\"']?{re.escape(step_id)}[\"']?\s*(#.*)?$")
        for path in sorted(directory.glob("*.y*ml")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not id_line.search(text):
                continue
            lines = text.splitlines()
            start = next((i for i, line in enumerate(lines) if step_line.match(line)), None)
            if start is not None and variant_id is not None:
                variant_line = re.compile(
                    rf"^\s*-?\s*id:\s*[\"']?{re.escape(variant_id)}[\"']?\s*(#.*)?$"
                )
                start = next(
                    (i for i in range(start + 1, len(lines)) if variant_line.match(lines[i])),
                    start,
                )
            if start is not None:
                for number in range(start, len(lines)):
                    if lines[number].strip().startswith("subject:"):
                        return f"{folder}/{path.name}:{number + 1}: {field}"
            return f"{folder}/{path.name}: {field}"
    return f"campaign {campaign_id}: {field}"
