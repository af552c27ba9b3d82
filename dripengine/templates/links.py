"""Links in an email: tags for scoring, UTM parameters per campaign, a hook for click tracking.

A template writes a tagged link with the ``link`` helper::

    <mj-button href="{{ link('https://acme.example/pricing', tag='pricing') }}">See pricing</mj-button>

Every other ``http(s)`` link in the compiled HTML (``<a href="https://…">``, ``mj-button href``,
``mj-image href``) is wrapped in ``link(…)`` at compile time, untagged, so every link of a message
is recorded, gets the UTM parameters and passes the click-tracking hook. Each call records a
:class:`Link` (``url`` before UTM, ``tag``, ``position`` from 0 in the HTML) in the message's
list. ``mailto:``, ``tel:`` and any other scheme get no UTM; the unsubscribe and preferences URLs
are never changed (the layout writes them as ``{{ unsubscribe_url }}``, not through ``link``).

The plain-text part calls ``link`` for the same links: it gets the same final URL and records
nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


@dataclass(frozen=True)
class Link:
    """One link of a rendered message: the author's URL, its tag, its place among the links."""

    url: str
    tag: str | None
    position: int


@dataclass(frozen=True)
class UTM:
    """UTM parameters for a campaign's links; ``utm_content`` is the step id.

    ``campaign`` defaults to the campaign id. Parameters already in a link's URL win: a link
    written with its own ``utm_source`` keeps it.
    """

    source: str
    medium: str = "email"
    campaign: str | None = None

    def params(self, campaign_id: str, step_id: str) -> dict[str, str]:
        return {
            "utm_source": self.source,
            "utm_medium": self.medium,
            "utm_campaign": self.campaign or campaign_id,
            "utm_content": step_id,
        }


class UTMConfig(Protocol):
    source: str
    medium: str
    campaign: str | None


def utm_from(config: UTMConfig | None) -> UTM | None:
    """A campaign's ``send.utm`` setting as the renderer takes it (None: links stay as written)."""
    if config is None:
        return None
    return UTM(source=config.source, medium=config.medium, campaign=config.campaign)


def add_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to its query string, keeping the ones already there.

    Only ``http`` and ``https`` URLs change; the fragment stays last. Results are cached: the
    same links with the same campaign and step repeat for every lead.
    """
    return _add_query(url, tuple(params.items()))


@lru_cache(maxsize=4096)
def _add_query(url: str, items: tuple[tuple[str, str], ...]) -> str:
    params = dict(items)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not params:
        return url
    existing = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in existing}
    extra = [(key, value) for key, value in params.items() if key not in present]
    if not extra:
        return url
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit(parts._replace(query=query))


RewriteLink = Callable[[Link, str], str]
"""The click-tracking hook: given the link and its URL with UTM, the URL to put in the email."""


@dataclass
class LinkRecorder:
    """The ``link`` helper for one message, and the links it recorded."""

    params: dict[str, str] = field(default_factory=dict)
    rewrite: RewriteLink | None = None
    untouched: Collection[str] = ()
    links: list[Link] = field(default_factory=list)
    _final: list[str] = field(default_factory=list)
    _text_used: set[int] = field(default_factory=set)

    def html_link(self, url: str, tag: str | None = None) -> str:
        """Record the link and return the URL to put in the HTML."""
        url = str(url).strip()
        if url in self.untouched:
            return url
        link = Link(url, tag, len(self.links))
        final = add_query(url, self.params)
        if self.rewrite is not None:
            final = self.rewrite(link, final)
        self.links.append(link)
        self._final.append(final)
        return final

    def text_link(self, url: str, tag: str | None = None) -> str:
        """The URL the HTML got for the same link (the first unused match), recording nothing."""
        url = str(url).strip()
        if url in self.untouched:
            return url
        for index, link in enumerate(self.links):
            if index not in self._text_used and link.url == url and link.tag == tag:
                self._text_used.add(index)
                return self._final[index]
        final = add_query(url, self.params)
        if self.rewrite is not None:
            final = self.rewrite(Link(url, tag, -1), final)
        return final
