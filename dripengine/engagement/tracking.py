"""Our own open and click tracking, for mail whose provider does not track it itself (the
provider's ``tracks_engagement``). Pure: no I/O.

- **Open**: a 1x1 GIF at ``{base_url}/o/{token}.gif`` added before ``</body>``; the token signs the
  message's uid (purpose ``open``).
- **Click**: every tracked link becomes ``{base_url}/c/{token}``; the token signs the message's
  uid, the URL the lead goes to (with its UTM parameters) and the link's tag (purpose ``click``).
  The redirect goes only to the URL inside a valid token, so it is never an open redirect: a URL
  that was not in one of our messages cannot be signed without the secret key.

Tokens never carry a row id. :func:`machine_reason` tells a privacy proxy or a link scanner
from a person, by user agent and address; the known ones are listed here and nowhere else.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dripengine.templates.links import Link, RewriteLink
from dripengine.tokens import BadToken, sign, unsign

OPEN_PURPOSE = "open"
CLICK_PURPOSE = "click"
_SEP = "\x1f"  # unit separator: in no uid, tag or URL

# the smallest transparent GIF (43 bytes): 1x1, one transparent colour
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

# user agents of image proxies, prefetchers and link scanners: (pattern, what it is)
MACHINE_AGENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"GoogleImageProxy|ggpht\.com", "Google image proxy"),
        (r"YahooMailProxy", "Yahoo Mail proxy"),
        (r"OutlookImageProxy|BingPreview", "Microsoft image proxy"),
        (r"Barracuda|Mimecast|Proofpoint|urldefense|SafeLinks|Trend ?Micro|Forcepoint", "scanner"),
        (r"HeadlessChrome|PhantomJS", "headless browser"),
        (r"\b(bot|crawler|spider|preview|scanner)\b", "bot"),
    )
)
# Apple Mail Privacy Protection fetches through Apple's own network with a bare "Mozilla/5.0"
APPLE_NETWORK = ipaddress.IPv4Network("17.0.0.0/8")
APPLE_AGENT = "Mozilla/5.0"


@dataclass(frozen=True)
class ClickTarget:
    """What a click token says: the message, where the lead goes, the link's tag."""

    message_uid: str
    url: str
    tag: str | None


def open_token(secret: str | None, message_uid: str) -> str:
    return sign(secret, OPEN_PURPOSE, message_uid)


def read_open(secret: str | None, token: str) -> str:
    """The message uid of an open token; :class:`BadToken` when it is not one of ours."""
    return unsign(secret, OPEN_PURPOSE, token)


def click_token(secret: str | None, message_uid: str, url: str, tag: str | None) -> str:
    return sign(secret, CLICK_PURPOSE, _SEP.join((message_uid, tag or "", url)))


def read_click(secret: str | None, token: str) -> ClickTarget:
    """The message, URL and tag of a click token; :class:`BadToken` when it is not one of ours."""
    uid, tag, url = _split(unsign(secret, CLICK_PURPOSE, token))
    if not uid or not url.lower().startswith(("http://", "https://")):
        raise BadToken()
    return ClickTarget(uid, url, tag or None)


def _split(value: str) -> tuple[str, str, str]:
    parts = value.split(_SEP, 2)
    if len(parts) != 3:
        raise BadToken()
    return parts[0], parts[1], parts[2]


def open_url(base_url: str, secret: str | None, message_uid: str) -> str:
    return f"{base_url.rstrip('/')}/o/{open_token(secret, message_uid)}.gif"


def click_rewriter(base_url: str, secret: str | None, message_uid: str) -> RewriteLink:
    """The renderer's ``rewrite_link`` hook for one message: http(s) links through ``/c/``.

    Other schemes (``mailto:``, ``tel:``) stay as they are; the URL kept in the token is the one
    with the UTM parameters already added, so the lead lands where the untracked link went.
    """
    base = base_url.rstrip("/")

    def rewrite(link: Link, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            return url
        return f"{base}/c/{click_token(secret, message_uid, url, link.tag)}"

    return rewrite


TAG_PARAM = "drip_tag"  # where a tagged link carries its tag through the provider's click tracking


def tag_in_url(link: Link, url: str) -> str:
    """The renderer's ``rewrite_link`` hook for mail of a provider that tracks engagement: it
    rewrites links itself and reports the clicked URL, so a tagged link carries its tag in the
    query (``drip_tag=pricing``) for the event to be scored by it."""
    if not link.tag or not url.lower().startswith(("http://", "https://")):
        return url
    scheme, netloc, path, query, fragment = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != TAG_PARAM]
    pairs.append((TAG_PARAM, link.tag))
    return urlunsplit((scheme, netloc, path, urlencode(pairs), fragment))


def add_pixel(html: str, pixel_url: str) -> str:
    """``html`` with the open pixel as the last thing in its body (or at the end)."""
    tag = (
        f'<img src="{pixel_url}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0" />'
    )
    index = html.lower().rfind("</body>")
    if index < 0:
        return html + tag
    return html[:index] + tag + html[index:]


def machine_reason(user_agent: str | None, address: str | None) -> str | None:
    """Why a hit looks like a machine (privacy proxy, prefetcher, link scanner), or None."""
    agent = (user_agent or "").strip()
    if not agent:
        return "no user agent"
    for pattern, name in MACHINE_AGENTS:
        if pattern.search(agent):
            return name
    if agent == APPLE_AGENT or _in_network(address, APPLE_NETWORK):
        return "Apple Mail Privacy Protection"
    return None


def _in_network(address: str | None, network: ipaddress.IPv4Network) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address) in network
    except ValueError:
        return False
