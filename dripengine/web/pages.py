"""The few HTML pages `drip serve` shows people (unsubscribe, preferences, a bad link).

Self-contained: inline CSS, no scripts, no external assets (nothing is fetched, nothing tracks),
except the sender's logo when ``[sender] logo_url`` is set (that one https origin is allowed).
Every value is escaped where it goes in: :func:`page` takes text, and :func:`form` builds its
parts from text; only this module writes markup. Each page speaks for the sender (:class:`Brand`,
from ``[sender]`` in drip.toml): its name, logo and colour, and the language of ``<html lang>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from dripengine.config import Settings

STYLE = (
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2933;"
    "background:#f5f7fa;margin:0;padding:2rem 1rem}"
    "main{max-width:32rem;margin:0 auto;background:#fff;border-radius:8px;padding:2rem;"
    "box-shadow:0 1px 3px rgba(0,0,0,.12)}"
    "h1{font-size:1.4rem;margin:0 0 1rem}form{margin:1.25rem 0 0}"
    "button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;cursor:pointer}"
    "a{color:#1565c0}.small{font-size:.875rem;color:#52606d}"
    "header{display:flex;align-items:center;gap:.75rem;margin:0 0 1.25rem;font-weight:600}"
    "header img{max-height:40px;max-width:160px}"
)
DEFAULT_COLOR = "#c62828"
HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


@dataclass(frozen=True)
class Brand:
    """Who the pages speak for, from ``[sender]``: never a product name of ours."""

    name: str = ""
    logo_url: str | None = None
    color: str | None = None  # #rrggbb / #rgb, validated by the settings
    language: str = "en"

    @classmethod
    def from_settings(cls, settings: Settings) -> Brand:
        sender = settings.sender
        return cls(sender.display_name, sender.logo_url, sender.brand_color, sender.language)

    def style(self) -> str:
        """The buttons and the top border in the brand's colour, its text readable on it."""
        color = self.color or DEFAULT_COLOR
        return (
            f"main{{border-top:4px solid {color}}}"
            f"button{{background:{color};color:{_readable_on(color)}}}"
            "button.quiet{background:#e4e7eb;color:#1f2933}"
        )

    def headers(self) -> dict[str, str]:
        if not self.logo_url:
            return HEADERS
        parts = urlsplit(self.logo_url)
        policy = HEADERS["Content-Security-Policy"] + f"; img-src https://{parts.netloc}"
        return {**HEADERS, "Content-Security-Policy": policy}

    def header(self) -> str:
        if not self.name and not self.logo_url:
            return ""
        logo = (
            f'<img src="{escape(self.logo_url)}" alt="{escape(self.name)}">'
            if self.logo_url
            else ""
        )
        name = f"<span>{escape(self.name)}</span>" if self.name else ""
        return f"<header>{logo}{name}</header>"


def _readable_on(color: str) -> str:
    """Black or white, whichever contrasts more with ``color`` (WCAG relative luminance)."""
    digits = color.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # contrast with white (1.05 / (L + .05)) against contrast with black ((L + .05) / .05)
    return "#fff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 else "#111"


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


def page(
    title: str, *parts: str | Markup, status: int = 200, brand: Brand | None = None
) -> HTMLResponse:
    """A small page: a heading and paragraphs (plain text is escaped) or :class:`Markup`."""
    brand = brand or Brand()
    body = "".join(_html(part) for part in parts)
    heading = f"{title} · {brand.name}" if brand.name else title
    html = (
        f'<!doctype html><html lang="{escape(brand.language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(heading)}</title>'
        f"<style>{STYLE}{brand.style()}</style></head><body><main>{brand.header()}"
        f"<h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=brand.headers())


def not_found(message: str, brand: Brand | None = None) -> HTMLResponse:
    """404: the link is not one of ours (changed, cut short, or made up); nothing was done."""
    return page("Link not valid", message, "Nothing was changed.", status=404, brand=brand)
