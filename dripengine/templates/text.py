"""Plain text: the text part from HTML (inscriptis), and one-line subjects and preheaders.

inscriptis (Apache-2.0, maintained) lays HTML out as text the way a browser would, tables
included, and shows each link as ``label (url)`` here. It takes about 1 ms for a 28 KB email, so
the engine runs it once per template version on the compiled HTML, with Jinja still protected,
and renders the result per lead (see :mod:`dripengine.templates.compile`); per email it only runs
as a fallback. html2text was measured as equally fast but is GPL-3.0.
"""

from __future__ import annotations

import re
import unicodedata

import lxml.html
from inscriptis import Inscriptis
from inscriptis.model.config import ParserConfig

SUBJECT_MAX = 200
"""Characters a subject may have; longer ones are cut at a word and end in "…"."""

_CONFIG = ParserConfig(display_links=True)
_MD_LINK = re.compile(r"\[([^\[\]\n]*)\]\(([^()\s]+)\)")
_BLANKS = re.compile(r"\n{3,}")
_SPACE = re.compile(r"\s+")
_BREAKS = str.maketrans(dict.fromkeys("\t\n\x0b\x0c\r", " "))  # control characters (Cc) -> space


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2)
    return url if not label or label == url else f"{label} ({url})"


def _unlayout(tree: lxml.html.HtmlElement) -> None:
    """MJML lays out with ``role="presentation"`` tables: read their cells as paragraphs."""
    for table in [t for t in tree.iter("table") if t.get("role") == "presentation"]:
        rows = []
        for child in table:
            if child.tag in ("tbody", "thead", "tfoot"):
                rows += list(child)
                child.tag = "div"
            elif child.tag == "tr":
                rows.append(child)
        for row in rows:
            if row.tag == "tr":
                row.tag = "div"
                for cell in row:
                    if cell.tag in ("td", "th"):
                        cell.tag = "p"
        table.tag = "div"


def html_to_text(html: str) -> str:
    """Readable plain text: paragraphs kept, lines trimmed, links as ``label (url)``."""
    if not html.strip():
        return "\n"
    tree = lxml.html.fromstring(html)
    _unlayout(tree)
    text = _MD_LINK.sub(_link, Inscriptis(tree, _CONFIG).get_text())
    lines = [line.strip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def one_line(text: str) -> str:
    """No control characters, no line breaks, whitespace collapsed, trimmed."""
    if not text.isprintable():
        text = text.translate(_BREAKS)  # the usual case (line breaks) without the loop below
    if text.isprintable():
        return _SPACE.sub(" ", text).strip()
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
        for c in text
        if unicodedata.category(c) != "Cf" or c in "\u200d"
    )
    return _SPACE.sub(" ", cleaned).strip()


def clean_subject(text: str, limit: int = SUBJECT_MAX) -> str:
    """A subject header: :func:`one_line`, at most ``limit`` characters (cut at a word)."""
    subject = one_line(text)
    if len(subject) <= limit:
        return subject
    cut = subject[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"
