"""Label files as table rows for the Great Expectations `labels` suite, plus the checks a table cannot make.

Each `class cx cy w h` line becomes a row (file, line, values, the box edges and its smallest side in
pixels, from the image's decoded size). Found here, line by line: text that is not UTF-8, a line that
does not parse, and a box that repeats an earlier line of the same file (a double click in a labelling
tool: it would be trained and scored twice).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vigil.data.findings import CRITICAL, WARNING, Report
from vigil.data.image_inspection import ImageInfo
from vigil.data.layout import decode_lines, parse_label_line

LABEL_HINT = "each line is `class cx cy w h` (YOLO, normalized)"
MAX_CLASS_ID = 2**31
COLUMNS = ["file", "line", "class_id", "cx", "cy", "w", "h", "min_side_px"]


def _side_px(w: float, h: float, image: ImageInfo) -> float:
    """The box's smaller side in pixels; NaN when unknown (image not decoded, or a size not positive)."""
    if (
        image.problem
        or not image.width
        or not (math.isfinite(w) and math.isfinite(h))
        or w <= 0
        or h <= 0
    ):
        return math.nan
    return min(w * image.width, h * image.height)


def read_label_rows(
    root: Path, rel: str, image: ImageInfo, report: Report, raw: bytes | None = None
) -> list[dict[str, Any]]:
    """The rows of one label file (its bytes `raw` when already read); problems that are not about
    values go to `report`."""
    try:
        if raw is None:
            raw = (root / rel).read_bytes()
    except OSError as exc:
        report.add(
            CRITICAL,
            "label_unreadable",
            rel,
            f"cannot read ({exc.strerror or exc})",
            "check the file and its permissions",
        )
        return []
    rows = []
    first_line: dict[tuple[int, float, float, float, float], int] = {}
    for number, text, problem in decode_lines(raw):
        if problem is not None or text is None:
            report.add(
                CRITICAL,
                "label_syntax",
                rel,
                problem or "unreadable line",
                "label files are plain UTF-8 text: class cx cy w h",
                line=number,
            )
            continue
        if not text.strip():
            continue
        try:
            box = parse_label_line(text)
        except ValueError as exc:
            report.add(CRITICAL, "label_syntax", rel, str(exc), LABEL_HINT, line=number)
            continue
        if abs(box.cls) > MAX_CLASS_ID:  # would overflow the table's integer column
            report.add(
                CRITICAL,
                "label_unknown_class",
                rel,
                f"class id {box.cls} is far outside classes.txt",
                "class ids index classes.txt (0-based)",
                line=number,
                field="class",
            )
            continue
        key = (box.cls, box.cx, box.cy, box.w, box.h)
        if key in first_line:
            report.add(
                WARNING,
                "box_duplicate",
                rel,
                f"the same box as line {first_line[key]}",
                "remove the repeated line (a box listed twice is trained and scored twice)",
                line=number,
            )
        else:
            first_line[key] = number
        rows.append(
            {
                "file": rel,
                "line": number,
                "class_id": box.cls,
                "cx": box.cx,
                "cy": box.cy,
                "w": box.w,
                "h": box.h,
                "min_side_px": _side_px(box.w, box.h, image),
            }
        )
    return rows


def label_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The `labels` table: non-finite numbers as null (the suite names them), box edges derived."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["class_id"] = frame["class_id"].astype("Int64")
    for col in ("cx", "cy", "w", "h", "min_side_px"):
        frame[col] = frame[col].astype(float)
        frame.loc[~np.isfinite(frame[col]), col] = np.nan
    frame["x_min"] = frame.cx - frame.w / 2
    frame["x_max"] = frame.cx + frame.w / 2
    frame["y_min"] = frame.cy - frame.h / 2
    frame["y_max"] = frame.cy + frame.h / 2
    overlap_w = (frame.x_max.clip(upper=1) - frame.x_min.clip(lower=0)).clip(lower=0)
    overlap_h = (frame.y_max.clip(upper=1) - frame.y_min.clip(lower=0)).clip(lower=0)
    frame["inside"] = overlap_w * overlap_h
    return frame
