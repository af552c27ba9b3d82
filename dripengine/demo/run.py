"""`drip demo [DIR]`: the whole loop on the embedded defaults, in a fresh folder, step by step.

Scaffold, sample leads, recycle, send into the outbox, then engagement through the very endpoints
the real world uses — `drip serve` runs on a loopback port and the demo plays the mail clients,
the ESP (:func:`dripengine.testing.esp_posts`) and the CRM: a pixel load and a click on links found
in the .eml files (:mod:`.mail`), a one-click unsubscribe (RFC 8058 POST), a bounce the ESP posts
as a signed webhook, a reply through its inbound route, a demo request through the API. Then a time jump, the rescoring, one lead
requalified and handed back, the suppressed ones out for good. Time is a clock the demo moves:
nothing waits for real days.

The folder gets a marker file, so a second ``drip demo`` there starts it over; a folder with
anything else in it is refused. The demo writes its port and API token into the folder's
``drip.toml``, so the links in its emails are served again by a plain ``drip serve`` there; with
``keep_serving`` (the default on a terminal) it serves them itself until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import urllib3

from dripengine.demo.cohort import Cohort
from dripengine.demo.folder import remember_serving
from dripengine.demo.mail import Mail, address, read_outbox
from dripengine.demo.serving import serving
from dripengine.demo.timeline import DemoClock, first_send_time
from dripengine.exceptions import DripError
from dripengine.testing import esp_posts
from dripengine.testing.serve_process import free_port

Echo = Callable[[str], None]


class Demo:
    def __init__(self, folder: Path, echo: Echo, cli: Callable[[list[str]], None]) -> None:
        self.folder = folder
        self.echo = echo
        self.cli = cli  # runs one drip command in this process, printing like the real one
        self.http = urllib3.PoolManager(retries=False, timeout=10.0)
        self.seen: set[Path] = set()
        self.step = 0
        self.esp = esp_posts()  # the ESP's webhook posts, as the ESP sends them

    # --- output --------------------------------------------------------------------------------------

    def section(self, title: str) -> None:
        self.step += 1
        self.echo("")
        self.echo(f"== {self.step}. {title}")

    def say(self, text: str) -> None:
        self.echo(f"   {text}")

    def drip(self, *args: str, now: datetime | None = None) -> None:
        argv = (["--now", now.isoformat()] if now else []) + list(args)
        self.echo(f"$ drip {' '.join(_quote(a) for a in argv)}")
        self.cli(argv)

    # --- the story -----------------------------------------------------------------------------------

    def run(self, started: datetime, *, keep_serving: bool = False) -> None:
        """The story from ``started`` on; with ``keep_serving``, serve its links until Ctrl-C."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        token = secrets.token_urlsafe(24)
        os.environ.update(
            {
                "DRIP_BASE_URL": base,
                "DRIP_WEB_PORT": str(port),
                "DRIP_API_TOKEN": token,
                **self.esp.environ(),
            }
        )
        t0 = first_send_time(started)

        self.section(f"A working folder on the embedded defaults (SQLite, outbox): {self.folder}")
        self.drip("init", str(self.folder))
        os.chdir(self.folder)
        remembered = remember_serving(self.folder / "drip.toml", base, port, token)
        self.drip("campaigns", "validate")

        self.section("Leads from the CRM, and the ones sales gave back")
        self.drip("leads", "import", "leads.csv")
        self.drip(
            "recycle", "jane@acme.example", "--from", "sql", "--reason", "no_budget",
            "--note", "revisit in Q3",
        )  # fmt: skip
        self.drip("recycle", "--csv", "lost-deals.csv")

        self.section(f"The first emails go out, as the daemon would send them on {t0:%A %d %B}")
        self.drip("run", "--once", now=t0)
        first = self.new_mail()
        for mail in first:
            self.say(f"{mail.path.name}: to {mail.to}: {mail.subject}")

        clock = DemoClock(t0 + timedelta(hours=2))
        with serving(clock, port) as server:
            self.section(f"drip serve listens on {base}: webhooks, tracking, unsubscribe, API")
            self.say(f"(the demo now plays the leads' mail clients, {self.esp.name} and the CRM)")
            by_lead = {address(m.to): m for m in first}

            self.section("Two hours later: the leads react")
            jane = by_lead["jane@acme.example"]
            self.open_pixel("Jane", jane)
            self.click("Jane", jane, 0)
            clock.current += timedelta(minutes=20)
            self.reply(
                "Jane", jane, "Re: " + jane.subject, "Interesting, what changed since spring?"
            )
            self.unsubscribe("Bob", by_lead["bob.miller@northwind.example"])
            self.bounce("Lukas", by_lead["lukas.huber@alpenwerk.example"], clock)
            self.drip("scoring", "explain", "jane@acme.example", now=clock.current)

            t1 = t0 + timedelta(days=7)
            self.section(f"A week later ({t1:%A %d %B}): the next emails, then more engagement")
            self.drip("run", "--once", now=t1)
            later = {address(m.to): m for m in self.new_mail()}
            for _, mail in sorted(later.items()):
                self.say(f"{mail.path.name}: to {mail.to}: {mail.subject}")
            for gone in ("bob.miller@northwind.example", "lukas.huber@alpenwerk.example"):
                self.say(f"{gone}: {'MAILED (wrong!)' if gone in later else 'not mailed again'}")
            clock.current = t1 + timedelta(hours=3)
            if "jane@acme.example" in later:
                self.click("Jane", later["jane@acme.example"], 0)
            else:
                self.say(
                    "jane@acme.example: no more emails; she replied, and the campaign exits on a reply"
                )
            self.api_event("Jane", "jane@acme.example", "demo_request", token, base)

            self.section("Back to sales, with the story of what Jane engaged with")
            self.drip("leads", "list", "--requalified", now=clock.current)
            self.drip("scoring", "explain", "jane@acme.example", now=clock.current)
            self.drip("suppress", "list")
            Cohort(self, clock, base, token).run(clock.current + timedelta(hours=1))

            self.section("Sales' side: the SLA's clocks on Jane's hand-back, and a rep's call")
            self.drip("sla", "breaches", now=clock.current)
            self.drip(
                "touches", "add", "jane@acme.example", "--kind", "call", "--rep", "Sam Reyes",
                "--note", "left a voicemail", now=clock.current,
            )  # fmt: skip
            self.drip("sla", "breaches", "--all", now=clock.current)
            self.drip("stats", now=clock.current)
            self.drip("report", "--out", "report.html", now=clock.current)
            self.done(clock, base, port, remembered, first, server if keep_serving else None)

    def done(
        self,
        clock: DemoClock,
        base: str,
        port: int,
        remembered: bool,
        first: list[Mail],
        serving: threading.Thread | None,
    ) -> None:
        """Where everything is, and the links to look at: served until Ctrl-C when ``serving`` is
        the server's thread, otherwise with the command that serves them again."""
        self.section("Done")
        self.say(f"Everything is in {self.folder}: the emails in outbox/, the database drip.db.")
        self.say(f"The report with charts: {self.folder / 'report.html'} (opens with no network).")
        self.say(
            f"The demo's clock ran ahead; to look around as of then: "
            f"drip --now {clock.current.isoformat()} leads show jane@acme.example"
        )
        by_lead = {address(m.to): m for m in first}
        self.say(
            f"The links in the emails in outbox/ (open an .eml in a mail client) go to {base}."
        )
        shown = []
        for who, email, state in (
            ("Bob", "bob.miller@northwind.example", "he left with one click"),
            ("Priya", "priya.nair@bluepeak.example", "she is still in"),
        ):
            if email in by_lead:
                shown.append(
                    (f"{who}'s unsubscribe page ({state})", by_lead[email].unsubscribe_url())
                )
        shown.append(
            ("the report, live (any user, the password is drip.toml's api_token)", base + "/report")
        )
        command = f"cd {_quote(str(self.folder))} && drip serve" + (
            "" if remembered else f" --port {port}"
        )
        if serving is None:
            self.say(f"drip serve has stopped. These links work again once you run: {command}")
            for label, url in shown:
                self.say(f"  {label}: {url}")
            return
        clock.run_on()
        self.say(f"drip serve keeps running on {base}, so these links work (Ctrl-C to stop):")
        for label, url in shown:
            self.say(f"  {label}: {url}")
        self.say(f"(later, to serve them again: {command})")
        try:
            while serving.is_alive():
                serving.join(0.5)
            raise DripError(f"drip serve on {base} stopped by itself")
        except KeyboardInterrupt:
            self.echo("")
            self.say("Stopped serving.")

    # --- the parts ------------------------------------------------------------------------------------

    def new_mail(self) -> list[Mail]:
        mails = [m for m in read_outbox(Path("outbox")) if m.path not in self.seen]
        self.seen.update(m.path for m in mails)
        return mails

    def open_pixel(self, who: str, mail: Mail) -> None:
        src = mail.pixel()
        if src is None:
            self.say(f"{who}'s email has no open pixel (web.track_opens is off)")
            return
        answer = self.http.request("GET", src, headers={"User-Agent": "Thunderbird/128.0"})
        self.say(f"{who} opens the email: GET {_short(src)} -> {answer.status} (a 1x1 GIF)")

    def click(self, who: str, mail: Mail, index: int) -> None:
        buttons = mail.buttons()
        if not buttons:
            self.say(f"{who}'s email has no tracked link (web.track_clicks is off)")
            return
        text, href = buttons[min(index, len(buttons) - 1)]
        answer = self.http.request("GET", href, redirect=False)
        target = answer.headers.get("Location", "?")
        self.say(f'{who} clicks "{text}": {answer.status} -> {target}')

    def unsubscribe(self, who: str, mail: Mail) -> None:
        url = mail.unsubscribe_url()
        answer = self.http.request(
            "POST",
            url,
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        self.say(f"{who}'s mail client sends the one-click unsubscribe (RFC 8058): {answer.status}")

    def bounce(self, who: str, mail: Mail, clock: DemoClock) -> None:
        status = self.esp.bounce(self.http, mail.base_url(), mail.message, clock.now())
        self.say(f"{who}'s address bounces: {self.esp.name} posts a signed bounce event: {status}")

    def reply(self, who: str, mail: Mail, subject: str, text: str) -> None:
        status = self.esp.reply(self.http, mail.base_url(), mail.message, subject, text)
        self.say(f'{who} replies "{text}" ({self.esp.inbound_name} posts it): {status}')

    def api_event(self, who: str, email: str, kind: str, token: str, base: str) -> None:
        answer = self.http.request(
            "POST",
            base + "/api/events",
            body=json.dumps({"email": email, "type": kind}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        self.say(f"{who} asks for a demo on the website; the CRM posts it: {answer.status}")


def _short(url: str) -> str:
    head, _, token = url.rpartition("/")
    return f"{head}/{token[:12]}…" if len(token) > 16 else url


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
