"""Email templates: MJML + Jinja compiled once per template version, rendered per lead.

The pieces, one idea each: :mod:`~.protect` (Jinja through the MJML compile),
:mod:`~.compile` (MJML, the text part, the cache), :mod:`~.structure` (layouts, blocks and
partials pasted together), :mod:`~.mjml_errors` (MJML's problems at their file and line),
:mod:`~.environment` (Jinja environments and the file loader), :mod:`~.render` (one email for
one lead), :mod:`~.context` (what a template sees), :mod:`~.links` (tags, UTM, the click-tracking
hook), :mod:`~.text` (plain text, subjects) and :mod:`~.check` (what ``drip campaigns validate``
checks).
"""

from __future__ import annotations

from dripengine.templates.check import check_templates
from dripengine.templates.compile import CompiledSource, compile_template
from dripengine.templates.context import (
    LEAD_FIELDS,
    SAMPLE_LEAD,
    Sender,
    build_context,
    lead_context,
    sample_context,
    sparse_context,
)
from dripengine.templates.errors import TemplateError
from dripengine.templates.links import UTM, Link, RewriteLink, add_query
from dripengine.templates.render import RenderedEmail, TemplateEngine
from dripengine.templates.text import clean_subject, html_to_text, one_line

__all__ = [
    "LEAD_FIELDS",
    "SAMPLE_LEAD",
    "UTM",
    "CompiledSource",
    "Link",
    "RenderedEmail",
    "RewriteLink",
    "Sender",
    "TemplateEngine",
    "TemplateError",
    "add_query",
    "build_context",
    "check_templates",
    "clean_subject",
    "compile_template",
    "html_to_text",
    "lead_context",
    "one_line",
    "sample_context",
    "sparse_context",
]
