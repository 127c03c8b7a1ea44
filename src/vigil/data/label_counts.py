"""What label files and the manifest hold, for the dataset summary, counted where the bytes are.

A label file gives boxes per class id and lines that do not parse; manifest.jsonl gives records,
unlabelled ones and strata. Both are computed in the hash worker that has just read the file and
kept in the hash cache beside its sha256, so at 100k files the parsing runs in parallel, once per
changed file, and the summary only adds small counters together (`Tally`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.data.layout import STRATA, parse_manifest


@dataclass(frozen=True)
class LabelCounts:
    boxes: dict[int, int]  # class id → boxes (in first-seen order)
    bad_lines: int  # lines that do not parse as `class cx cy w h`


def count_label_bytes(raw: bytes) -> LabelCounts | None:
    """The counts of one label file's bytes; None when they are not UTF-8 text.

    A line counts as a box exactly when `vigil.data.layout.parse_label_line` parses it (five fields,
    numbers, an integer class id); the test is inlined here because at 100k label files the parser's
    per-line object and exceptions were most of the hash stage's CPU time."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    boxes: dict[int, int] = {}
    bad = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            bad += 1
            continue
        try:
            cls_f = float(fields[0])
            float(fields[1]), float(fields[2]), float(fields[3]), float(fields[4])
        except ValueError:
            bad += 1
            continue
        if not cls_f.is_integer():
            bad += 1
            continue
        cls = int(cls_f)
        boxes[cls] = boxes.get(cls, 0) + 1
    return LabelCounts(boxes, bad)


def label_extra(raw: bytes | None) -> list[Any] | None:
    """What the hash cache keeps of one label file: [[class id, boxes], …] and the bad-line count,
    or None when the bytes are unreadable (not UTF-8, or could not be read)."""
    counted = count_label_bytes(raw) if raw is not None else None
    if counted is None:
        return None
    return [[cls, n] for cls, n in counted.boxes.items()] + [counted.bad_lines]


def manifest_extra(path: Path) -> dict[str, Any]:
    """What the summary needs of manifest.jsonl: records, unlabelled ones, bad lines, strata counts."""
    parsed = parse_manifest(path)
    records = [m.record for m in parsed.lines]
    return {
        "records": len(records),
        "unlabelled": sum(1 for r in records if r.get("labelled", True) is False),
        "errors": len(parsed.errors),
        "strata": {
            s: dict(sorted(Counter(stratum_value(r.get(s)) for r in records).items()))
            for s in STRATA
        },
    }


def stratum_value(value: Any) -> str:
    """A manifest value as the summary shows it (JSON for non-strings, `<missing>` for absent)."""
    if value is None:
        return "<missing>"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Tally:
    """The summary's counts over any set of files, added up file by file; sets of files add."""

    kinds: dict[str, list[int]] = field(default_factory=dict)  # kind → [files, bytes]
    boxes: Counter[int] = field(default_factory=Counter)  # class id → boxes
    id_sets: Counter[tuple[int, ...]] = field(
        default_factory=Counter
    )  # class ids of a file → files
    negatives: int = 0  # label files without a box or a bad line
    bad_lines: int = 0
    unreadable_labels: int = 0
    manifest: dict[str, Any] | None = None  # manifest_extra of the root manifest.jsonl

    def add_file(self, kind: str, size: int, extra: Any = None) -> None:
        """Count one file of `kind`; `extra` is its label_extra (a label) or manifest_extra."""
        counts = self.kinds.setdefault(kind, [0, 0])
        counts[0] += 1
        counts[1] += size
        if kind == "label":
            if extra is None:
                self.unreadable_labels += 1
                return
            *pairs, bad = extra
            ids = set()
            for cls, n in pairs:
                self.boxes[cls] += n
                ids.add(cls)
            self.bad_lines += bad
            if ids:
                self.id_sets[tuple(sorted(ids))] += 1
            elif not bad:
                self.negatives += 1
        elif kind == "manifest" and extra is not None:
            self.manifest = extra

    def add_files(self, kind: str, files: int, size: int) -> None:
        """Count `files` files of a kind whose content is not counted (images, other), `size` bytes."""
        counts = self.kinds.setdefault(kind, [0, 0])
        counts[0] += files
        counts[1] += size

    def add(self, other: Tally) -> None:
        """Add another set of files' counts to these."""
        for kind, (n, size) in other.kinds.items():
            counts = self.kinds.setdefault(kind, [0, 0])
            counts[0] += n
            counts[1] += size
        self.boxes.update(other.boxes)
        self.id_sets.update(other.id_sets)
        self.negatives += other.negatives
        self.bad_lines += other.bad_lines
        self.unreadable_labels += other.unreadable_labels
        if other.manifest is not None:
            self.manifest = other.manifest
