"""Headless Chromium for looking at rendered emails as a reader would: no network, no extra packages.

Chromium is driven over the Chrome DevTools Protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in a NUL byte, commands on fd 3, answers on fd 4), so neither a websocket library
nor a driver binary is needed. One browser serves many pages; each :meth:`Browser.open` loads a
local HTML file at a given viewport width and returns what the page measures. Used by
``tests/test_templates_browser.py`` and ``scripts/screenshots``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
"""Debian's package ``chromium``; ``.ci/run`` installs it when it is missing."""

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
)

MEASURE = """
(() => {
  const root = document.documentElement;
  const unsubscribe = [...document.querySelectorAll('a')]
    .filter((a) => a.getAttribute('href') === %s)
    .map((a) => {
      const box = a.getBoundingClientRect();
      const style = getComputedStyle(a);
      return {
        text: a.textContent.trim(),
        left: box.left, right: box.right, top: box.top, width: box.width, height: box.height,
        display: style.display, visibility: style.visibility, opacity: style.opacity,
        fontSize: parseFloat(style.fontSize),
      };
    });
  return {
    scrollWidth: root.scrollWidth,
    innerWidth: window.innerWidth,
    height: Math.ceil(Math.max(root.scrollHeight, document.body.scrollHeight)),
    unsubscribe,
  };
})()
"""


class BrowserError(RuntimeError):
    """Chromium did not answer as expected."""


@dataclass(frozen=True)
class Page:
    """What a page measured at one viewport width."""

    width: int
    scroll_width: int
    inner_width: int
    height: int
    unsubscribe: list[dict[str, Any]]

    @property
    def overflows(self) -> bool:
        return self.scroll_width > self.inner_width

    def visible_unsubscribe(self) -> list[dict[str, Any]]:
        """The unsubscribe links a reader can see: a real box, on the page, not hidden."""
        return [
            link
            for link in self.unsubscribe
            if link["width"] > 0
            and link["height"] > 0
            and link["display"] != "none"
            and link["visibility"] not in ("hidden", "collapse")
            and float(link["opacity"]) > 0
            and link["left"] >= 0
            and link["right"] <= self.inner_width
            and link["top"] >= 0
            and link["text"]
        ]


class Browser:
    """One headless Chromium with a fresh profile; use as a context manager."""

    def __init__(self, executable: str = CHROMIUM, timeout: float = 30.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._buffer = b""
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="drip-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Chromium reads fd 3 and writes fd 4; bash puts our pipe ends there (moved above 9
        # first, so the redirections never overwrite each other; dash cannot name fds above 9)
        child_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_child_r, from_child_w):
            os.close(fd)
        self._process = subprocess.Popen(
            [
                shutil.which("bash") or "/bin/bash",
                "-c",
                f'exec "$0" "$@" 3<&{child_r} 4>&{child_w} {child_r}<&- {child_w}>&-',
                self.executable,
                *FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(child_r, child_w),
        )
        os.close(child_r)
        os.close(child_w)
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
            self._session = attached["sessionId"]
            self.call("Page.enable", session=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(BrowserError, OSError):  # it may close before it answers
            self.call("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_child)
        os.close(self._from_child)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- the protocol ---------------------------------------------------------------------

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self._events.append(answer)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for index, seen in enumerate(self._events):
                if seen["method"] == event:
                    del self._events[: index + 1]
                    return
            self._events.append(self._read(deadline))

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout:.0f}s")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe (did it start?)")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    # -- pages ----------------------------------------------------------------------------

    def open(self, path: Path, width: int, unsubscribe_url: str) -> Page:
        """Load ``path`` in a viewport ``width`` px wide and measure it."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=100,  # small, so the page height measured is the content's
            deviceScaleFactor=1,
            mobile=False,
        )
        self._events.clear()
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        self._wait_for("Page.loadEventFired")
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=MEASURE % json.dumps(unsubscribe_url),
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"measuring {path.name}: {result['exceptionDetails']}")
        value = result["result"]["value"]
        return Page(
            width=width,
            scroll_width=value["scrollWidth"],
            inner_width=value["innerWidth"],
            height=value["height"],
            unsubscribe=value["unsubscribe"],
        )

    def screenshot(self, page: Page, out: Path) -> None:
        """A PNG of the page just opened, as wide as the viewport and as tall as the page."""
        shot = self.call(
            "Page.captureScreenshot",
            session=True,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": page.width, "height": page.height, "scale": 1},
        )
        out.write_bytes(base64.b64decode(shot["data"]))
