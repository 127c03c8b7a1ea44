"""What one label file holds, for the dataset summary: boxes per class id, and lines that do not parse.

Computed where the file's bytes are: in the hash worker that has just read them, so at 100k label
files the parsing runs in parallel and the summary only adds small counters together.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.data.layout import parse_label_line


@dataclass(frozen=True)
class LabelCounts:
    boxes: dict[int, int]  # class id → boxes (in first-seen order)
    bad_lines: int  # lines that do not parse as `class cx cy w h`


def count_label_bytes(raw: bytes) -> LabelCounts | None:
    """The counts of one label file's bytes; None when they are not UTF-8 text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    boxes: dict[int, int] = {}
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            cls = parse_label_line(line).cls
        except ValueError:
            bad += 1
            continue
        boxes[cls] = boxes.get(cls, 0) + 1
    return LabelCounts(boxes, bad)
