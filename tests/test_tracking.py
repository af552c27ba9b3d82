"""Own tracking, pure: tokens, link rewriting, the pixel, machine detection; and the page escaping."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripengine.engagement.tracking import (
    PIXEL_GIF,
    add_pixel,
    click_rewriter,
    click_token,
    machine_reason,
    open_token,
    read_click,
    read_open,
)
from dripengine.templates import TemplateEngine, sample_context
from dripengine.templates.compile import CACHE
from dripengine.templates.links import UTM, Link
from dripengine.tokens import BadToken, sign
from dripengine.web.pages import form, page

SECRET = "s3cret-key-for-tests-only"
BASE = "http://127.0.0.1:8080"
UID = "0123456789abcdef0123456789abcdef"


@given(
    # any text an email can carry: lone surrogates cannot be written as UTF-8, so no link has one
    st.text(
        alphabet=st.characters(blacklist_characters="\x1f", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=40,
    ),
    st.one_of(st.none(), st.text(alphabet="abcdefgh-_", min_size=1, max_size=12)),
)
def test_a_click_token_gives_back_its_url_and_tag(path: str, tag: str | None) -> None:
    url = "https://acme.example/" + path
    target = read_click(SECRET, click_token(SECRET, UID, url, tag))
    assert (target.message_uid, target.url, target.tag) == (UID, url, tag)


def test_a_token_is_only_good_for_its_purpose() -> None:
    opened = open_token(SECRET, UID)
    clicked = click_token(SECRET, UID, "https://acme.example/", None)
    assert read_open(SECRET, opened) == UID
    with pytest.raises(BadToken):
        read_click(SECRET, opened)
    with pytest.raises(BadToken):
        read_open(SECRET, clicked)
    with pytest.raises(BadToken):  # the unsubscribe token of the same message
        read_open(SECRET, sign(SECRET, "unsubscribe", UID))


def test_a_url_that_was_not_signed_cannot_be_put_in_a_token() -> None:
    good = click_token(SECRET, UID, "https://acme.example/pricing", "pricing")
    evil = click_token("another-secret-key-1234", UID, "https://evil.example/", "pricing")
    spliced = evil.split(".")[0] + "." + good.split(".")[1]  # evil payload, our signature
    for token in (evil, spliced):
        with pytest.raises(BadToken):
            read_click(SECRET, token)
    # signed by us, but not an http(s) URL: never redirected to
    with pytest.raises(BadToken):
        read_click(SECRET, click_token(SECRET, UID, "javascript:alert(1)", None))


def test_the_rewriter_keeps_the_utm_url_in_the_token_and_leaves_other_schemes() -> None:
    rewrite = click_rewriter(BASE + "/", SECRET, UID)
    final = "https://acme.example/pricing?utm_source=drip&utm_content=checkin"
    tracked = rewrite(Link("https://acme.example/pricing", "pricing", 0), final)
    assert tracked.startswith(f"{BASE}/c/")
    target = read_click(SECRET, tracked.removeprefix(f"{BASE}/c/"))
    assert (target.url, target.tag) == (final, "pricing")
    assert rewrite(Link("mailto:sales@acme.example", None, 1), "mailto:sales@acme.example") == (
        "mailto:sales@acme.example"
    )


def test_rendering_rewrites_links_but_never_the_unsubscribe_url(tmp_path: Path) -> None:
    CACHE.data.clear()
    (tmp_path / "t.mjml").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>"
        '<a href="https://acme.example/guide">Guide</a> '
        "<a href=\"{{ link('https://acme.example/pricing', tag='pricing') }}\">Pricing</a> "
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a> <a href="mailto:s@acme.example">Mail</a>'
        "</mj-text></mj-column></mj-section></mj-body></mjml>",
        encoding="utf-8",
    )
    context = sample_context(postal_address="Acme GmbH, Example Street 1, 10115 Berlin")
    context["unsubscribe_url"] = f"{BASE}/u/TOKEN"
    rendered = TemplateEngine(tmp_path).render(
        "t.mjml",
        context,
        subject="Hi",
        utm=UTM(source="drip"),
        rewrite_link=click_rewriter(BASE, SECRET, UID),
    )
    assert f'href="{BASE}/u/TOKEN"' in rendered.html
    assert 'href="mailto:s@acme.example"' in rendered.html
    tokens = [part.split('"')[0] for part in rendered.html.split(f"{BASE}/c/")[1:]]
    targets = [read_click(SECRET, token) for token in tokens]
    assert [(t.url.split("?")[0], t.tag) for t in targets] == [
        ("https://acme.example/guide", None),
        ("https://acme.example/pricing", "pricing"),
    ]
    step = context["step"]["id"]
    assert all("utm_source=drip" in t.url and f"utm_content={step}" in t.url for t in targets), (
        targets
    )
    assert f"{BASE}/c/" in rendered.text  # the text part gets the same tracked links


def test_the_pixel_goes_last_in_the_body() -> None:
    html = add_pixel("<html><body><p>Hi</p></BODY></html>", f"{BASE}/o/x.gif")
    assert html.index('src="http://127.0.0.1:8080/o/x.gif"') < html.index("</BODY>")
    assert add_pixel("<p>no body</p>", "u").endswith(
        '<img src="u" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0" />'
    )
    assert PIXEL_GIF.startswith(b"GIF89a\x01\x00\x01\x00") and PIXEL_GIF.endswith(b";")


@pytest.mark.parametrize(
    ("agent", "address", "machine"),
    [
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            "66.249.84.1",
            True,
        ),
        (
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            "98.136.0.1",
            True,
        ),
        ("Mozilla/5.0", "17.58.100.1", True),  # Apple Mail Privacy Protection
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)", "17.58.100.1", True),
        ("Mozilla/5.0", "203.0.113.9", True),  # the bare agent Apple's proxy sends
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "203.0.113.9", True),
        ("", "203.0.113.9", True),
        (None, None, True),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            "203.0.113.9",
            False,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
            "198.51.100.7",
            False,
        ),
        ("Mozilla/5.0 (Macintosh) Robotic Arms Inc browser", "not-an-ip", False),
    ],
)
def test_privacy_proxies_and_scanners_are_machines(
    agent: str | None, address: str | None, machine: bool
) -> None:
    assert (machine_reason(agent, address) is not None) is machine


def test_pages_escape_what_they_show() -> None:
    response = page(
        "<Title>", "a <script>alert(1)</script> & b", form('/u/"x', "Go <now>", {"a": '"><'})
    )
    body = bytes(response.body).decode()
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "&lt;Title&gt;" in body and 'action="/u/&quot;x"' in body
    assert 'value="&quot;&gt;&lt;"' in body and "Go &lt;now&gt;" in body
    assert "http" not in body.split("</style>")[1]  # nothing fetched from elsewhere


def test_sendgrid_mail_carries_a_links_tag_in_its_query_for_the_click_event() -> None:
    from dripengine.engagement.tracking import tag_in_url
    from dripengine.providers.sendgrid.events import parse_event
    from dripengine.templates.links import Link

    url = tag_in_url(
        Link("https://acme.example/pricing", "pricing", 0),
        "https://acme.example/pricing?utm_source=drip&drip_tag=stale",
    )
    assert url == "https://acme.example/pricing?utm_source=drip&drip_tag=pricing"
    untagged = Link("https://acme.example/", None, 1)
    assert tag_in_url(untagged, "https://acme.example/?a=1") == "https://acme.example/?a=1"
    assert tag_in_url(Link("mailto:x@acme.example", "mail", 2), "mailto:x@acme.example") == (
        "mailto:x@acme.example"
    )
    event = parse_event(
        {"event": "click", "timestamp": 1_790_000_000, "email": "a@b.example", "url": url}
    )
    assert event.tag == "pricing"
