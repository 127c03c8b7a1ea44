"""The findings page: one self-contained HTML file a reviewer reads offline (no script, no network).

Every finding is a row with its severity, file, line, field, rule, message and hint, beside a
thumbnail of the image it is about with the offending box drawn (`vigil.detection.draw`): a label
row's box, or the whole image for an image-level finding; images named in the message (the other
half of a near-duplicate) get a thumbnail too. The coverage tables (boxes per class, labelled images
per stratum value) are bars against their minimums. Thumbnails are inline JPEG data URIs.
"""

from __future__ import annotations

import base64
import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.data.findings import CRITICAL, Finding, Report
from vigil.data.layout import MANIFEST, is_inside, label_rel_for, parse_label_line, parse_manifest
from vigil.detection.boxes import yolo_to_xyxy
from vigil.detection.draw import FINDING, Mark, decode_image, draw_marks, encode_jpeg, shrink
from vigil.params import ValidateParams

THUMB_SIDE = 240  # px: a thumbnail's longer side
MAX_THUMBNAILS = 300  # distinct images drawn; later findings still list, with no picture
PAGE = (
    "findings.html"  # its name in the docs folder, beside the GE data docs (gx/) and findings.txt
)
MENTIONED = re.compile(r"\bimages/[^\s,;:()'\"]+\.\w+")


@dataclass(frozen=True)
class Minimums:
    per_class: int  # boxes per class below this: a coverage warning
    per_stratum: int  # labelled images per stratum value below this: a coverage warning
    max_image_side: int  # a larger image is not decoded for a thumbnail


@dataclass(frozen=True)
class Target:
    """What a finding's thumbnail shows: an image (dataset-relative) and maybe one label's box."""

    image: str
    label: str | None = None  # the label file and line whose box is drawn
    line: int | None = None


def _manifest_images(root: Path) -> tuple[dict[int, str], dict[str, str]]:
    """(manifest line → image, label file → image) as far as the manifest reads."""
    by_line: dict[int, str] = {}
    by_label: dict[str, str] = {}
    if not (root / MANIFEST).is_file():
        return by_line, by_label
    for entry in parse_manifest(root / MANIFEST).lines:
        image = entry.record.get("image")
        if isinstance(image, str) and is_inside(root, image):
            by_line[entry.line] = image
            by_label.setdefault(label_rel_for(image), image)
    return by_line, by_label


def targets(
    root: Path, finding: Finding, by_line: dict[int, str], by_label: dict[str, str]
) -> list[Target]:
    """The images a finding is about, the first with the offending box when it names a label row."""
    found: list[Target] = []
    if finding.path.startswith("images/"):
        found.append(Target(finding.path))
    elif finding.path in by_label:
        found.append(Target(by_label[finding.path], finding.path, finding.line))
    elif finding.path == MANIFEST and finding.line in by_line:
        found.append(Target(by_line[finding.line]))
    for other in MENTIONED.findall(finding.message):
        if all(t.image != other for t in found):
            found.append(Target(other))
    return [t for t in found if is_inside(root, t.image) and (root / t.image).is_file()]


def _box(root: Path, target: Target, width: int, height: int) -> Mark | None:
    """The label row's box in pixels, or None when the row does not parse (its finding says why)."""
    if target.label is None or target.line is None or not is_inside(root, target.label):
        return None
    try:
        lines = (root / target.label).read_text(encoding="utf-8").splitlines()
        box = parse_label_line(lines[target.line - 1])
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        return None
    x1, y1, x2, y2 = yolo_to_xyxy([(box.cx, box.cy, box.w, box.h)], width, height)[0]
    return Mark((float(x1), float(y1), float(x2), float(y2)), FINDING, f"line {target.line}")


def thumbnail(root: Path, target: Target, max_side: int) -> str | None:
    """A data URI of the target's image, its box drawn, at most THUMB_SIDE px; None if it does not decode."""
    try:
        raw = (root / target.image).read_bytes()
    except OSError:
        return None
    image = decode_image(raw, max_side)
    if image is None:
        return None
    mark = _box(root, target, image.shape[1], image.shape[0])
    drawn = draw_marks(image, [mark] if mark else [], min_side=THUMB_SIDE * 2, legend=False)
    data = encode_jpeg(shrink(drawn, THUMB_SIDE * 2), quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _bars(title: str, rows: Sequence[dict[str, Any]], minimum: int, unit: str) -> str:
    top = max([minimum, *(int(r["count"]) for r in rows)]) or 1
    out = [f"<h3>{html.escape(title)}</h3>", '<div class="bars">']
    for row in rows:
        count = int(row["count"])
        low = count < minimum
        out.append(
            f'<div class="bar-row{" low" if low else ""}"><span class="bar-label">'
            f"{html.escape(str(row['value']))}</span>"
            f'<span class="bar-track"><span class="bar" style="width:{100 * count / top:.1f}%"></span>'
            f'<span class="bar-min" style="left:{100 * minimum / top:.1f}%" title="minimum {minimum}">'
            f'</span></span><span class="bar-count">{count} {unit}{" — below " + str(minimum) if low else ""}'
            "</span></div>"
        )
    out.append("</div>")
    return "\n".join(out)


def coverage_html(coverage: Sequence[dict[str, Any]], minimums: Minimums) -> str:
    """Boxes per class, then labelled images per value of each stratum, as bars with the minimum marked."""
    if not coverage:
        return "<p>No coverage: no labelled image was read.</p>"
    parts = [
        _bars(
            "Boxes per class",
            [r for r in coverage if r["kind"] == "class"],
            minimums.per_class,
            "boxes",
        )
    ]
    keys = list(dict.fromkeys(r["key"] for r in coverage if r["kind"] == "stratum"))
    for key in keys:
        rows = [r for r in coverage if r["kind"] == "stratum" and r["key"] == key]
        parts.append(_bars(f"Labelled images per {key}", rows, minimums.per_stratum, "images"))
    return "\n".join(parts)


STYLE = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
tr.critical td.severity { color: #b00; font-weight: bold; }
tr.warning td.severity { color: #a60; }
td.thumbs img { max-width: 240px; margin: 0 4px 4px 0; border: 1px solid #ccc; }
code { font-size: 90%; }
.bars { max-width: 900px; }
.bar-row { display: flex; align-items: center; margin: 2px 0; }
.bar-label { width: 12em; overflow: hidden; text-overflow: ellipsis; }
.bar-track { position: relative; flex: 1; height: 14px; background: #f0f0f0; }
.bar { position: absolute; left: 0; top: 0; bottom: 0; background: #0072b2; }
.bar-row.low .bar { background: #d55e00; }
.bar-min { position: absolute; top: -2px; bottom: -2px; width: 2px; background: #222; }
.bar-count { width: 14em; padding-left: 8px; font-size: 90%; }
"""


def minimums_of(params: ValidateParams) -> Minimums:
    return Minimums(params.min_per_class, params.min_per_stratum, params.max_image_side)


def findings_html(root: Path, report: Report, minimums: Minimums) -> str:
    """The whole page for `report` on the dataset at `root` (read for thumbnails, never written)."""
    root = Path(root)
    by_line, by_label = _manifest_images(root)
    drawn: dict[tuple[str, str | None, int | None], str | None] = {}
    rows = []
    for number, finding in enumerate(report.findings, 1):
        pictures = []
        for target in targets(root, finding, by_line, by_label):
            key = (target.image, target.label, target.line)
            if key not in drawn:
                budget = len({k[0] for k, v in drawn.items() if v}) < MAX_THUMBNAILS
                drawn[key] = thumbnail(root, target, minimums.max_image_side) if budget else None
            uri = drawn[key]
            if uri:
                pictures.append(
                    f'<img src="{uri}" alt="{html.escape(target.image)}" title="{html.escape(target.image)}">'
                )
        cells = [
            f'<td class="number">{number}</td>',
            f'<td class="severity">{html.escape(finding.severity)}</td>',
            f'<td class="file"><code>{html.escape(finding.path)}</code></td>',
            f'<td class="line">{"" if finding.line is None else finding.line}</td>',
            f'<td class="field">{html.escape(finding.field or "")}</td>',
            f'<td class="rule"><code>{html.escape(finding.rule)}</code></td>',
            f'<td class="message">{html.escape(finding.message)}</td>',
            f'<td class="hint">{html.escape(finding.hint)}</td>',
            f'<td class="thumbs">{"".join(pictures)}</td>',
        ]
        rows.append(
            f'<tr class="finding {html.escape(finding.severity)}" data-rule="{html.escape(finding.rule)}">{"".join(cells)}</tr>'
        )
    rules = Counter(f"{f.severity}: {f.rule}" for f in report.findings)
    critical = sum(f.severity == CRITICAL for f in report.findings)
    stats = ", ".join(f"{k} {v}" for k, v in report.stats.items() if isinstance(v, int))
    verdict = "passed" if report.passed else "REJECTED"
    summary = "".join(
        f"<li><code>{html.escape(k)}</code>: {n}</li>" for k, n in sorted(rules.items())
    )
    table = (
        "<table><thead><tr><th>#</th><th>severity</th><th>file</th><th>line</th><th>field</th>"
        "<th>rule</th><th>finding</th><th>what to do</th><th>image</th></tr></thead><tbody>"
        + "\n".join(rows)
        + "</tbody></table>"
        if rows
        else "<p>No findings.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>vigil data findings</title><style>{STYLE}</style></head>
<body>
<h1>Data findings: {verdict}</h1>
<p>{len(report.findings)} findings ({critical} critical, {len(report.findings) - critical} warnings). {html.escape(stats)}.</p>
<ul>{summary}</ul>
<h2>Coverage</h2>
<div id="coverage">{coverage_html(report.coverage, minimums)}</div>
<h2>Findings</h2>
<div id="findings">{table}</div>
</body>
</html>
"""
