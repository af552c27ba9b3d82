"""The report page in headless Chromium: what it logged, what it asked the network for, and
whether each chart drew. Built on :class:`tests.browser.Browser` (DevTools over a pipe).

``python -m tests.report_browser REPORT.html OUT.png`` takes the screenshot kept in
``docs/screenshots/report.png``.
"""

from __future__ import annotations

import base64
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.browser import Browser, BrowserError

# every canvas: its size and how many of its pixels are not transparent
CANVASES = """
(() => [...document.querySelectorAll('canvas')].map((canvas) => {
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) painted += 1; }
  return {id: canvas.id, width: canvas.width, height: canvas.height, painted};
}))()
"""

# every chart as Chart.js drew it: the colours of its series, its axes and their ticks, its plot area
CHARTS = """
(() => [...document.querySelectorAll('canvas')].map((canvas) => {
  const chart = Chart.getChart(canvas);
  const box = canvas.getBoundingClientRect();
  const area = chart.chartArea;
  return {
    id: canvas.id,
    left: box.left,
    right: box.right,
    plot: {width: area.right - area.left, height: area.bottom - area.top},
    datasets: chart.data.datasets.map((d) => ({
      label: d.label, background: d.backgroundColor, border: d.borderColor ?? null,
    })),
    scales: Object.values(chart.scales).map((s) => ({
      id: s.id, axis: s.axis, type: s.type, min: s.min, ticks: s.ticks.map((t) => t.value),
    })),
    legend: (chart.legend.legendItems || []).map((item) => [item.text, item.fillStyle]),
  };
}))()
"""

# what a reader sees of the page: its width against the window's, its text, the campaign swatches
LAYOUT = """
(() => {
  const root = document.documentElement;
  const outside = [...document.querySelectorAll('body *')].filter((e) => {
    const box = e.getBoundingClientRect();
    return box.width > 0 && (box.left < -0.5 || box.right > root.clientWidth + 0.5)
      && !e.closest('.scroll');
  });
  return {
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    outside: outside.map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')),
    text: document.body.innerText,
    code: [...document.querySelectorAll('code')].map((e) => e.textContent),
    swatches: [...document.querySelectorAll('.swatch')].map((e) => [
      e.parentElement.textContent.trim(), getComputedStyle(e).backgroundColor,
    ]),
  };
})()
"""


@dataclass
class Loaded:
    """What one page load showed."""

    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    canvases: list[dict[str, Any]] = field(default_factory=list)
    charts_drawn: int = 0
    height: int = 0


class ReportBrowser(Browser):
    def load(self, path: Path, width: int = 1200) -> Loaded:
        for domain in ("Runtime.enable", "Log.enable", "Network.enable"):
            self.call(domain, session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        self._events.clear()
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        seen = self._until("Page.loadEventFired")
        time.sleep(0.2)  # late console messages
        loaded = Loaded()
        for event in seen + self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                loaded.errors.append(str(params["exceptionDetails"].get("text")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                loaded.errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                loaded.errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                loaded.requests.append(params["request"]["url"])
        loaded.canvases = self.evaluate(CANVASES)
        loaded.charts_drawn = int(
            self.evaluate("document.body.getAttribute('data-charts-drawn') || '0'")
        )
        loaded.height = int(self.evaluate("document.documentElement.scrollHeight"))
        return loaded

    def charts(self) -> list[dict[str, Any]]:
        """Every chart of the loaded page, read from its Chart.js instance."""
        return list(self.evaluate(CHARTS))

    def layout(self) -> dict[str, Any]:
        return dict(self.evaluate(LAYOUT))

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    def shoot(self, out: Path, width: int, height: int) -> None:
        shot = self.call(
            "Page.captureScreenshot",
            session=True,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        out.write_bytes(base64.b64decode(shot["data"]))

    def _until(self, event: str) -> list[dict[str, Any]]:
        """Every event up to and including ``event``, kept (Browser._wait_for drops them)."""
        deadline = time.monotonic() + self.timeout
        seen: list[dict[str, Any]] = []
        while True:
            while self._events:
                message = self._events.pop(0)
                seen.append(message)
                if message.get("method") == event:
                    return seen
            self._events.append(self._read(deadline))


def main(argv: list[str]) -> None:
    page, out = Path(argv[0]), Path(argv[1])
    with ReportBrowser() as browser:
        loaded = browser.load(page, 1200)
        if loaded.errors or loaded.requests[1:]:
            raise SystemExit(f"errors: {loaded.errors}; requests: {loaded.requests}")
        browser.shoot(out, 1200, loaded.height)
    print(f"{out}: {loaded.charts_drawn} charts, {loaded.height} px")


if __name__ == "__main__":
    main(sys.argv[1:])
