"""The unsubscribe confirmation page in headless Chromium at 375 and 1280 px: the browser reads the
language from settings, shows the sender's name, fits a phone without sideways scrolling, loads
nothing from elsewhere, and the undo button is on screen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser import CHROMIUM
from tests.report_browser import ReportBrowser
from tests.test_web_unsubscribe_pages import LATER, make_site, post

pytestmark = [
    pytest.mark.slow,  # headless Chromium over a `drip serve` subprocess
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is not installed"),
]

LOOK = """
(() => {
  const button = [...document.querySelectorAll('button')]
    .find((b) => b.textContent.includes('clicked by mistake'));
  const box = button ? button.getBoundingClientRect() : null;
  return {
    lang: document.documentElement.lang,
    header: document.querySelector('header') ? document.querySelector('header').innerText : '',
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    undo: box && {left: box.left, right: box.right, width: box.width,
                  background: getComputedStyle(button).backgroundColor},
    unsubscribeColour: getComputedStyle(document.querySelector('main')).borderTopColor,
  };
})()
"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_confirmation_page_in_chromium_at_phone_and_desktop_width(
    folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site = make_site(
        folder,
        monkeypatch,
        DRIP_SENDER_BRAND_NAME="Northwind Analytics",
        DRIP_SENDER_BRAND_COLOR="#0f766e",
        DRIP_SENDER_LANGUAGE="en-GB",
    )
    path = site.path(site.email())
    with site.serve(LATER) as base:
        done = post(base, path, b"action=unsubscribe")
    assert done.status == 200
    saved = tmp_path / "unsubscribed.html"
    saved.write_bytes(done.body)
    with ReportBrowser() as browser:
        for width in (375, 1280):
            loaded = browser.load(saved, width)
            assert loaded.errors == [] and loaded.requests == [saved.resolve().as_uri()]
            look = browser.evaluate(LOOK)
            assert look["lang"] == "en-GB"
            assert look["header"] == "Northwind Analytics"
            assert look["scrollWidth"] <= look["innerWidth"] == width
            undo = look["undo"]
            assert undo is not None and undo["width"] > 0 and undo["right"] <= width
            assert look["unsubscribeColour"] == "rgb(15, 118, 110)"  # the brand colour
            browser.shoot(tmp_path / f"unsubscribed-{width}.png", width, loaded.height)
