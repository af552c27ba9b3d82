"""`drip demo [DIR]`: the whole loop on the embedded defaults, in a fresh folder, step by step.

Scaffold, sample leads, recycle, send into the outbox, then engagement through the very endpoints
the real world uses — `drip serve` runs on a loopback port and the demo plays the mail clients,
SendGrid and the CRM: a pixel load and a click on links found in the .eml files, a one-click
unsubscribe (RFC 8058 POST), a bounce posted by "SendGrid" as a signed webhook, a reply through
Inbound Parse, a demo request through the API. Then a time jump, the rescoring, one lead
requalified and handed back, the suppressed ones out for good. Time is a clock the demo moves:
nothing waits for real days.

The folder gets a marker file, so a second ``drip demo`` there starts it over; a folder with
anything else in it is refused. The demo writes its port and API token into the folder's
``drip.toml``, so the links in its emails are served again by a plain ``drip serve`` there; with
``keep_serving`` (the default on a terminal) it serves them itself until Ctrl-C.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import urllib3

from dripengine.demo.folder import remember_serving
from dripengine.exceptions import DripError
from dripengine.testing.serve_process import free_port

Echo = Callable[[str], None]

BUTTON = re.compile(r'<a [^>]*href="(?P<href>[^"]+/c/[^"]+)"[^>]*>(?P<text>.*?)</a>', re.S)
PIXEL = re.compile(r'<img [^>]*src="(?P<src>[^"]+/o/[^"]+)"')
TAGS = re.compile(r"<[^>]+>")


SEND_AT = (14, 30)  # UTC; see first_send_time


def first_send_time(now: datetime) -> datetime:
    """14:30 UTC on the first Tuesday to Thursday at least two days after ``now``.

    Inside the example campaigns' windows (09:00-17:00) for the demo's leads in Europe and New
    York in every season: 15:30 or 16:30 in Berlin, 09:30 or 10:30 in New York, past the half
    hour a lead moved to a window's opening is spread over. (15:00 UTC was 17:00 in Berlin in
    summer time: the window had closed and Jane got no email from April to October.)
    """
    earliest = now.astimezone(UTC) + timedelta(days=2)
    day = earliest.replace(hour=SEND_AT[0], minute=SEND_AT[1], second=0, microsecond=0)
    if day < earliest:
        day += timedelta(days=1)
    while day.weekday() not in (1, 2, 3):
        day += timedelta(days=1)
    return day


class DemoClock:
    """The demo's clock: stands where the story puts it, then (while the demo keeps serving at the
    end) runs on from there in real time."""

    def __init__(self, current: datetime) -> None:
        self.current = current
        self._since: float | None = None

    def now(self) -> datetime:
        if self._since is None:
            return self.current
        return self.current + timedelta(seconds=time.monotonic() - self._since)

    def run_on(self) -> None:
        self._since = time.monotonic()


@dataclass
class Mail:
    path: Path
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""

    def buttons(self) -> list[tuple[str, str]]:
        """``(text, tracked href)`` of each tracked link, in order."""
        found = []
        for match in BUTTON.finditer(self.html):
            text = " ".join(TAGS.sub(" ", match["text"]).split())
            found.append((text, match["href"].replace("&amp;", "&")))
        return found

    def pixel(self) -> str | None:
        match = PIXEL.search(self.html)
        return match["src"].replace("&amp;", "&") if match else None

    def unsubscribe_url(self) -> str:
        return str(self.message["List-Unsubscribe"]).strip("<>")


def read_outbox(folder: Path) -> list[Mail]:
    mails = []
    for path in sorted(folder.glob("**/*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        mails.append(Mail(path, message))
    return mails


class Demo:
    def __init__(self, folder: Path, echo: Echo, cli: Callable[[list[str]], None]) -> None:
        self.folder = folder
        self.echo = echo
        self.cli = cli  # runs one drip command in this process, printing like the real one
        self.http = urllib3.PoolManager(retries=False, timeout=10.0)
        self.seen: set[Path] = set()
        self.step = 0

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
        private_key, public_key = _key_pair()
        self.inbound_secret = secrets.token_urlsafe(24)
        os.environ.update(
            {
                "DRIP_BASE_URL": base,
                "DRIP_WEB_PORT": str(port),
                "DRIP_API_TOKEN": token,
                "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": public_key,
                "DRIP_WEBHOOKS_INBOUND_SECRET": self.inbound_secret,
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
        with self.serve(clock, port) as serving:
            self.section(f"drip serve listens on {base}: webhooks, tracking, unsubscribe, API")
            self.say("(the demo now plays the leads' mail clients, SendGrid and the CRM)")
            by_lead = {_address(m.to): m for m in first}

            self.section("Two hours later: the leads react")
            jane = by_lead["jane@acme.example"]
            self.open_pixel("Jane", jane)
            self.click("Jane", jane, 0)
            clock.current += timedelta(minutes=20)
            self.reply(
                "Jane", jane, "Re: " + jane.subject, "Interesting, what changed since spring?"
            )
            self.unsubscribe("Bob", by_lead["bob.miller@northwind.example"])
            self.bounce("Lukas", by_lead["lukas.huber@alpenwerk.example"], private_key, clock)
            self.drip("scoring", "explain", "jane@acme.example", now=clock.current)

            t1 = t0 + timedelta(days=7)
            self.section(f"A week later ({t1:%A %d %B}): the next emails, then more engagement")
            self.drip("run", "--once", now=t1)
            later = {_address(m.to): m for m in self.new_mail()}
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
            self.drip("stats", now=clock.current)
            self.drip("report", "--out", "report.html", now=clock.current)
            self.done(clock, base, port, remembered, first, serving if keep_serving else None)

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
        by_lead = {_address(m.to): m for m in first}
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

    @contextmanager
    def serve(self, clock: DemoClock, port: int) -> Iterator[threading.Thread]:
        import uvicorn

        from dripengine.config import load_settings
        from dripengine.funnel.sla import load_sla
        from dripengine.storage.engine import make_engine
        from dripengine.web import build_app
        from dripengine.web.context import WebContext

        settings = load_settings()
        engine = make_engine(settings.database_url)
        ctx = WebContext(settings, engine, load_sla(settings.path("sla")), clock)
        config = uvicorn.Config(
            build_app(ctx), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="drip-serve", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"drip serve did not start on 127.0.0.1:{port}")
            time.sleep(0.02)
        try:
            yield thread
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            engine.dispose()

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

    def bounce(self, who: str, mail: Mail, private_key: Any, clock: DemoClock) -> None:
        from dripengine.providers.sendgrid.provider import UID_ARG

        uid = str(mail.message["Message-ID"]).strip("<>").split("@", 1)[0]
        event = {
            "email": _address(mail.to),
            "timestamp": int(clock.now().timestamp()) - 60,
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist",
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": f"demo{secrets.token_hex(8)}.filter0001",
            UID_ARG: uid,
        }
        body = json.dumps([event]).encode()
        stamp = str(int(clock.now().timestamp()))  # SendGrid signs with its own clock
        answer = self.http.request(
            "POST",
            _base(mail) + "/webhooks/sendgrid",
            body=body,
            headers={
                "Content-Type": "application/json",
                "X-Twilio-Email-Event-Webhook-Signature": _sign(private_key, stamp, body),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            },
        )
        self.say(f"{who}'s address bounces: SendGrid posts a signed bounce event: {answer.status}")

    def reply(self, who: str, mail: Mail, subject: str, text: str) -> None:
        answer = self._inbound(mail, subject, text)
        self.say(f'{who} replies "{text}" (SendGrid Inbound Parse posts it): {answer.status}')

    def _inbound(self, mail: Mail, subject: str, text: str) -> Any:
        sender = _address(mail.to)
        headers = (
            f"From: {mail.to}\nTo: {mail.message['From']}\nSubject: {subject}\n"
            f"In-Reply-To: {mail.message['Message-ID']}\n"
            f"References: {mail.message['Message-ID']}\n"
        )
        fields = {
            "headers": headers,
            "from": str(mail.to),
            "to": str(mail.message["From"]),
            "subject": subject,
            "text": text,
            "envelope": json.dumps({"from": sender, "to": [str(mail.message["From"])]}),
            # what SendGrid adds after checking the reply: only an authenticated one counts
            "SPF": "pass",
            "dkim": "{@" + sender.rpartition("@")[2] + " : pass}",
            "spam_score": "0.3",
        }
        return self.http.request(
            "POST", f"{_base(mail)}/webhooks/sendgrid/inbound/{self.inbound_secret}", fields=fields
        )

    def api_event(self, who: str, email: str, kind: str, token: str, base: str) -> None:
        answer = self.http.request(
            "POST",
            base + "/api/events",
            body=json.dumps({"email": email, "type": kind}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        self.say(f"{who} asks for a demo on the website; the CRM posts it: {answer.status}")


def _key_pair() -> tuple[Any, str]:
    """A P-256 key pair like SendGrid's: the private half signs, the public half (base64 DER, as
    SendGrid's settings page shows it) goes into the settings."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_key = ec.generate_private_key(ec.SECP256R1())
    public = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_key, base64.b64encode(public).decode("ascii")


def _sign(private_key: Any, stamp: str, body: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signature = private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


def _address(header: str) -> str:
    from email.utils import parseaddr

    return parseaddr(header)[1].lower()


def _base(mail: Mail) -> str:
    return mail.unsubscribe_url().split("/u/", 1)[0]


def _short(url: str) -> str:
    head, _, token = url.rpartition("/")
    return f"{head}/{token[:12]}…" if len(token) > 16 else url


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
