"""The demo at scale: a quarter's lost deals through the shipped win-back campaign, with its 10 %
holdout and the subject A/B test on its first step.

The demo plays the leads, and says how: the numbers below are the demo's assumptions, not a
forecast. What is real is everything dripengine does with them: the hash that puts a lead in the
holdout or a variant, the sends, the tracking hits through `drip serve` (a link scanner's clicks
included, which must not count), the winner's test and switch, the hand-backs and the lift with
its interval.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dripengine.demo.mail import Mail, address
from dripengine.demo.timeline import first_send_time

if TYPE_CHECKING:
    from dripengine.demo.run import Demo
    from dripengine.demo.timeline import DemoClock

T = TypeVar("T")
SIZE = 1_200
DOMAIN = "lost-q3.example"
SEED = 16
# The demo's assumptions, printed as it plays them.
HUMAN_OPEN = 0.35
A, B = "still-thinking", "smaller-start"  # the two subjects of the first step
CLICK = {A: 0.03, B: 0.08}  # the share of each variant's emails a person clicks
SCANNER = 0.40  # the share of the first variant's emails a security gateway's scanner follows
ASKS_FOR_DEMO = {"clicked": 0.60, "emailed": 0.08, "holdout": 0.02}
SALES_ACCEPTS = 0.5
# How the demo tells the shipped campaign's two subjects apart (campaigns/lost-sql-winback.yaml).
B_WORDS = "smaller way to start"

FIRST = ("Anna", "Ben", "Chloe", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas")
LAST = ("Schmidt", "Novak", "Garcia", "Okafor", "Lindqvist", "Rossi", "Tanaka", "Dubois")
TITLES = ("Head of Operations", "VP Sales", "IT Director", "COO", "Head of Finance")
INDUSTRIES = ("manufacturing", "software", "logistics", "services")
REASONS = ("no_budget", "bad_timing", "went_silent", "chose_competitor")
SCANNER_AGENT = "Mimecast URL Protect"
MAIL_AGENT = "Thunderbird/128.0"


def write_lost_deals(path: Path, size: int = SIZE) -> list[str]:
    """A CSV of ``size`` lost SQLs and opportunities with full profiles (fit grade B), as a CRM
    export would give them; the addresses, in order."""
    pick = random.Random(SEED)
    emails = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["email", "from_stage", "reason", "first_name", "last_name", "company", "title",
             "industry", "employees", "timezone"]
        )  # fmt: skip
        for number in range(1, size + 1):
            email = f"lead{number:04d}@{DOMAIN}"
            emails.append(email)
            writer.writerow(
                [email, pick.choice(("sql", "opportunity")), pick.choice(REASONS),
                 pick.choice(FIRST), pick.choice(LAST), f"Company {number:04d}",
                 pick.choice(TITLES), pick.choice(INDUSTRIES), pick.choice((80, 250, 900)),
                 "Europe/Berlin"]
            )  # fmt: skip
    return emails


def variant_of(mail: Mail) -> str:
    return B if B_WORDS in mail.subject else A


class Cohort:
    """One quarter's lost deals, played through the demo's `drip serve`."""

    def __init__(self, demo: Demo, clock: DemoClock, base: str, token: str) -> None:
        self.demo = demo
        self.clock = clock
        self.base = base
        self.token = token
        self.pick = random.Random(SEED)
        self.asked: list[str] = []  # the leads that asked for a demo, in order

    def run(self, recycled_at: datetime) -> None:
        demo = self.demo
        demo.section(f"A quarter's lost deals at scale: {SIZE} leads, a holdout and an A/B test")
        demo.say(
            "lost-sql-winback holds 10 % of its leads out (sent nothing) and tests two subjects "
            "on its first email; pick_winner keeps the better one once the difference is real."
        )
        emails = write_lost_deals(Path("lost-deals-q3.csv"))
        self.clock.current = recycled_at
        demo.drip("recycle", "--csv", "lost-deals-q3.csv", "--create", now=recycled_at)

        sent_at = first_send_time(recycled_at + timedelta(days=5))
        demo.drip("run", "--once", now=sent_at)
        mails = [m for m in demo.new_mail() if address(m.to).endswith("@" + DOMAIN)]
        emailed = {address(m.to) for m in mails}
        by_variant = {v: sum(variant_of(m) == v for m in mails) for v in (A, B)}
        demo.say(
            f"{len(mails)} first emails went out ({A} {by_variant[A]}, {B} {by_variant[B]}); "
            f"{len(emails) - len(emailed)} leads are in the holdout: no email."
        )

        self.clock.current = sent_at + timedelta(seconds=2)
        scanned = self.scan([m for m in mails if variant_of(m) == A])
        self.clock.current = sent_at + timedelta(hours=3)
        clicked = self.react(mails)
        demo.say(
            f"The demo plays the readers: {HUMAN_OPEN:.0%} open; people click "
            f"{CLICK[A]:.0%} of {A} and {CLICK[B]:.0%} of {B}; a link scanner follows "
            f"{scanned} of {A}'s emails within seconds (machine clicks: they must not make "
            "a winner)."
        )
        decided_at = sent_at + timedelta(days=1)
        demo.drip("run", "--once", now=decided_at)
        demo.drip("stats", "--by", "variant", now=decided_at)

        self.clock.current = decided_at + timedelta(hours=2)
        asked = self.ask_for_demos(emails, emailed, clicked)
        demo.say(
            f"On the website, {asked['treated']} emailed leads and {asked['holdout']} held-out "
            "leads visit the pricing page and ask for a demo twice; the CRM posts it "
            f"(the demo's assumption: {ASKS_FOR_DEMO['clicked']:.0%} of clickers, "
            f"{ASKS_FOR_DEMO['emailed']:.0%} of the other emailed leads, "
            f"{ASKS_FOR_DEMO['holdout']:.0%} of the holdout)."
        )
        self.clock.current = decided_at + timedelta(days=2)
        accepted = self.sales_decides(self.asked)
        demo.say(
            f"Sales accepts {accepted} of the {len(self.asked)} leads handed back, rejects the "
            "others (the CRM posts each decision: POST /api/feedback)."
        )
        demo.drip("stats", "lost-sql-winback", now=self.clock.current)

    # --- the leads ------------------------------------------------------------------------------

    def scan(self, mails: list[Mail]) -> int:
        scanned = self.share_of(self.linked(mails), SCANNER)
        for mail in scanned:
            self.get(mail.buttons()[0][1], SCANNER_AGENT)
        return len(scanned)

    def react(self, mails: list[Mail]) -> set[str]:
        """Exactly the assumed share of each variant's readers opens and clicks (the same leads
        on every run: the mails in address order, a seeded sample)."""
        ordered = sorted(mails, key=lambda m: address(m.to))
        for mail in self.share_of([m for m in ordered if m.pixel()], HUMAN_OPEN):
            self.get(str(mail.pixel()), MAIL_AGENT)
        clicked = set()
        for variant, share in CLICK.items():
            readers = self.linked([m for m in ordered if variant_of(m) == variant])
            for mail in self.share_of(readers, share):
                self.get(mail.buttons()[0][1], MAIL_AGENT)
                clicked.add(address(mail.to))
        return clicked

    @staticmethod
    def linked(mails: list[Mail]) -> list[Mail]:
        return sorted((m for m in mails if m.buttons()), key=lambda m: address(m.to))

    def ask_for_demos(
        self, emails: list[str], emailed: set[str], clicked: set[str]
    ) -> dict[str, int]:
        """Exactly each group's share of its leads (rounded) asks, picked at random: the demo's
        assumption, not luck of the draw."""
        groups = {
            "holdout": [e for e in emails if e not in emailed],
            "clicked": [e for e in emails if e in clicked],
            "emailed": [e for e in emails if e in emailed and e not in clicked],
        }
        asking = {
            name: self.share_of(members, ASKS_FOR_DEMO[name]) for name, members in groups.items()
        }
        events = []
        for email in sorted(e for members in asking.values() for e in members):
            self.asked.append(email)
            # a visit to the pricing page, then two demo requests an hour apart
            for hours, kind in ((3, "site_visit"), (2, "demo_request"), (1, "demo_request")):
                at = (self.clock.current - timedelta(hours=hours)).isoformat()
                events.append({"email": email, "type": kind, "occurred_at": at})
        for start in range(0, len(events), 200):
            self.post("/api/events", events[start : start + 200])
        return {
            "treated": len(asking["clicked"]) + len(asking["emailed"]),
            "holdout": len(asking["holdout"]),
        }

    def sales_decides(self, emails: list[str]) -> int:
        accepted = 0
        accepting = set(self.share_of(emails, SALES_ACCEPTS))
        for email in emails:
            if email in accepting:
                body = {"email": email, "outcome": "accepted"}
            else:
                body = {"email": email, "outcome": "rejected", "reason": "bad_timing"}
            status = self.post("/api/feedback", body)
            accepted += status in (200, 201) and body["outcome"] == "accepted"
        return accepted

    def share_of(self, members: list[T], share: float) -> list[T]:
        return self.pick.sample(members, round(share * len(members)))

    # --- HTTP -----------------------------------------------------------------------------------

    def get(self, url: str, agent: str) -> int:
        answer = self.demo.http.request("GET", url, redirect=False, headers={"User-Agent": agent})
        return int(answer.status)

    def post(self, path: str, body: object) -> int:
        answer = self.demo.http.request(
            "POST",
            self.base + path,
            body=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
            },
        )
        return int(answer.status)
