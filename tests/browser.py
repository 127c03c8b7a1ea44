"""Headless Chromium with no network: open a page, let its scripts run, read back the DOM and pixels.

Tests using it are marked `browser` and skip where no Chromium binary exists
(`apt-get install -y chromium`, or `make browser`). The network is cut three ways: every host
resolves to nothing, every request goes to a closed proxy, and nothing on the pages may point
outside (the pages are checked for that separately).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHECK_ID = "vigil-browser-check"

# Appended to a copy of the page: once every element with an id holds a drawing (or after 15 s),
# record per element what it drew (svg nodes, data marks = drawn lines and cells, canvas size,
# loaded images) and where it sits on the page, as JSON in the DOM; the caller crops a screenshot
# there to see that its pixels are not blank.
PROBE = """
<script>
(() => {
  const started = performance.now();
  const report = () => {
    const out = {};
    for (const div of document.querySelectorAll("body > div[id]")) {
      const canvas = div.querySelector("canvas");
      const images = [...div.querySelectorAll("img")];
      const box = div.getBoundingClientRect();
      out[div.id] = {
        svg: div.querySelectorAll("svg path, svg line, svg rect, svg text").length,
        marks: [...div.querySelectorAll("g.mark-line.role-mark path, g.mark-rect.role-mark path")]
          .filter(p => (p.getAttribute("d") || "").length > 8).length,
        canvas: canvas ? canvas.width * canvas.height : 0,
        images: images.length,
        loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
        rect: [box.left + window.scrollX, box.top + window.scrollY, box.width, box.height],
        pending: !!div.querySelector("script"),  // a chart still to be drawn by its script
      };
    }
    return out;
  };
  const done = (out) => Object.values(out).every(d => !d.pending || d.svg || d.canvas);
  const poll = () => {
    const out = report();
    if (!done(out) && performance.now() - started < 15000) { setTimeout(poll, 250); return; }
    const pre = document.createElement("pre");
    pre.id = "CHECK_ID";
    pre.textContent = JSON.stringify({ms: Math.round(performance.now()), plots: out});
    document.body.appendChild(pre);
  };
  window.addEventListener("load", () => setTimeout(poll, 0));
})();
</script>
""".replace("CHECK_ID", CHECK_ID)


def chromium() -> str | None:
    return next((path for name in NAMES if (path := shutil.which(name))), None)


needs_chromium = pytest.mark.skipif(
    chromium() is None, reason="no Chromium binary (apt-get install chromium)"
)


def _run(args: list[str], page: Path, profile: Path, timeout: float = 120) -> tuple[str, float]:
    binary = chromium()
    assert binary is not None
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--virtual-time-budget=20000",
        *args,
        page.resolve().as_uri(),
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, seconds


def probe(page: Path, work: Path, size: tuple[int, int] = (1280, 4000)) -> dict[str, Any]:
    """`{ms, plots: {id: {svg, marks, canvas, images, loaded, rect}}}` of each top-level `div[id]` of `page`,
    read back from headless Chromium (window `size`); `ms`: page start to every plot drawn."""
    copy = work / f"probed-{page.name}"
    head, tail = page.read_text(encoding="utf-8").rsplit(
        "</body>", 1
    )  # the last: scripts may hold one
    copy.write_text(head + PROBE + "</body>" + tail, encoding="utf-8")
    dom, _ = _run(["--dump-dom", f"--window-size={size[0]},{size[1]}"], copy, work / "profile-dom")
    start = dom.find(f'<pre id="{CHECK_ID}">')
    assert start >= 0, "the probe did not run: the page's scripts failed or never loaded"
    text = dom[start:].split(">", 1)[1].split("</pre>", 1)[0]
    import html

    return json.loads(html.unescape(text))


def dump_dom(page: Path, work: Path) -> str:
    return _run(["--dump-dom"], page, work / "profile-dump")[0]


def screenshot(page: Path, out: Path, work: Path, size: tuple[int, int] = (1280, 4000)) -> float:
    """A PNG of `page` (window `size`) at `out`; returns the seconds Chromium took, start to exit."""
    _, seconds = _run(
        [f"--screenshot={out}", f"--window-size={size[0]},{size[1]}"], page, work / "profile-shot"
    )
    assert out.is_file()
    return seconds


def inked_fraction(png: Path, rect: list[float] | None = None) -> float:
    """The share of pixels that are not near-white, in the whole PNG or in `rect` (x, y, w, h)."""
    from PIL import Image

    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"))
    if rect is not None:
        x, y, w, h = (int(round(v)) for v in rect)
        pixels = pixels[y : y + h, x : x + w]
    return float((pixels.min(axis=2) < 235).mean()) if pixels.size else 0.0
