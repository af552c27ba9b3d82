"""The example emails as a reader sees them: every step of both example campaigns, rendered for the
sample lead and opened in headless Chromium at a phone's and a desktop's width.

Checks what a person would notice first: nothing sticks out sideways (no horizontal scrolling) and
the unsubscribe link is there to see. ``scripts/screenshots`` takes the pictures in docs/ with the
same code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dripengine.authoring.preview import find_campaign, render_step, sample_lead
from dripengine.campaigns import load_campaigns
from dripengine.cli.scaffold import SKELETON
from dripengine.config import load_settings
from dripengine.templates import RenderedEmail, TemplateEngine
from tests.browser import CHROMIUM, Browser, Page

pytestmark = pytest.mark.slow  # headless Chromium

CAMPAIGNS = ("rejected-mql-nurture", "lost-sql-winback")
WIDTHS = (375, 800)


@dataclass(frozen=True)
class Example:
    campaign: str
    track: str
    step: str
    email: RenderedEmail
    unsubscribe_url: str

    @property
    def name(self) -> str:
        return f"{self.campaign}-{self.step}"


def example_emails() -> list[Example]:
    """Every step of the example campaigns, rendered for the sample lead as a preview would be."""
    skeleton = Path(SKELETON)
    settings = load_settings(skeleton / "drip.toml", env={})
    campaigns = load_campaigns(skeleton / "campaigns", templates_dir=skeleton / "templates")
    engine = TemplateEngine(skeleton / "templates")
    unsubscribe_url = f"{settings.sender.base_url.rstrip('/')}/u/preview"
    examples = []
    for campaign_id in CAMPAIGNS:
        campaign = find_campaign(campaigns, campaign_id)
        for track, step in campaign.all_steps():
            email = render_step(engine, campaign, track, step, sample_lead(), settings)
            examples.append(Example(campaign.id, track, step.id, email, unsubscribe_url))
    return examples


EXAMPLES = example_emails()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"{CHROMIUM} not found: install the Debian package chromium "
            "(apt-get install chromium; .ci/run does)"
        )
    with Browser() as chromium:
        yield chromium


def open_example(browser: Browser, example: Example, width: int, folder: Path) -> Page:
    path = folder / f"{example.name}.html"
    path.write_text(example.email.html, encoding="utf-8")
    return browser.open(path, width, example.unsubscribe_url)


def test_every_step_of_both_example_campaigns_is_checked() -> None:
    assert {e.campaign for e in EXAMPLES} == set(CAMPAIGNS)
    assert len(EXAMPLES) >= 10


def test_examples_tag_their_links_for_scoring_and_keep_prices_out_of_cold_tracks() -> None:
    tags = {link.tag for e in EXAMPLES for link in e.email.links}
    assert {"guide", "tip", "case-study", "webinar", "roi", "pricing", "demo"} <= tags
    for example in EXAMPLES:
        assert len(example.email.links) <= 2, example.name  # one call to action, at most an aside
        assert all(link.tag for link in example.email.links), example.name
        assert all("acme.example" in link.url for link in example.email.links), example.name
        if example.track == "cold":
            assert "pricing" not in {link.tag for link in example.email.links}, example.name
            assert "€" not in example.email.text and "/ month" not in example.email.text


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_example_email_fits_the_screen_and_shows_the_unsubscribe_link(
    browser: Browser, example: Example, width: int, tmp_path: Path
) -> None:
    page = open_example(browser, example, width, tmp_path)
    assert page.inner_width == width
    assert not page.overflows, (
        f"{example.name} at {width}px scrolls sideways: the page is {page.scroll_width}px wide"
    )
    assert page.unsubscribe, f"{example.name}: no <a href> to {example.unsubscribe_url}"
    assert page.visible_unsubscribe(), (
        f"{example.name} at {width}px: the unsubscribe link is not visible: {page.unsubscribe}"
    )
