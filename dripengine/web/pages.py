"""The few HTML pages `drip serve` shows people (unsubscribe, preferences, a bad link).

Self-contained: inline CSS, no scripts, no external assets (nothing is fetched, nothing tracks).
Every value is escaped where it goes in: :func:`page` takes text, and :func:`form` builds its
parts from text; only this module writes markup.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

STYLE = (
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2933;"
    "background:#f5f7fa;margin:0;padding:2rem 1rem}"
    "main{max-width:32rem;margin:0 auto;background:#fff;border-radius:8px;padding:2rem;"
    "box-shadow:0 1px 3px rgba(0,0,0,.12)}"
    "h1{font-size:1.4rem;margin:0 0 1rem}form{margin:1.25rem 0 0}"
    "button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;cursor:pointer;"
    "background:#c62828;color:#fff}button.quiet{background:#e4e7eb;color:#1f2933}"
    "a{color:#1565c0}.small{font-size:.875rem;color:#52606d}"
)
HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


class Markup(str):
    """HTML built here from escaped parts: :func:`page` does not escape it again."""


def _html(part: str | Markup) -> str:
    return part if isinstance(part, Markup) else f"<p>{escape(part)}</p>"


def form(action: str, label: str, fields: dict[str, str], *, quiet: bool = False) -> Markup:
    """A POST form with hidden ``fields`` and one button."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    css = ' class="quiet"' if quiet else ""
    return Markup(
        f'<form method="post" action="{escape(action)}">{hidden}'
        f'<button type="submit"{css}>{escape(label)}</button></form>'
    )


def link(href: str, label: str) -> Markup:
    return Markup(f'<p class="small"><a href="{escape(href)}">{escape(label)}</a></p>')


def page(title: str, *parts: str | Markup, status: int = 200) -> HTMLResponse:
    """A small page: a heading and paragraphs (plain text is escaped) or :class:`Markup`."""
    body = "".join(_html(part) for part in parts)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><main><h1>{escape(title)}</h1>{body}</main>"
        "</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def not_found(message: str) -> HTMLResponse:
    """404: the link is not one of ours (changed, cut short, or made up); nothing was done."""
    return page("Link not valid", message, "Nothing was changed.", status=404)
