"""What a dataset holds, for review (`metrics/dataset.json`), and the hash stage that writes it.

`summarize` counts files and bytes per kind, labelled and unlabelled images, negatives, boxes and
images per class, images per stratum value, and the dataset fingerprint; `hash_dataset` is the hash
stage (hash, per-file manifest, summary); `describe` is its two terminal lines.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vigil.atomic import write_json_atomic
from vigil.data.hashing import (
    KINDS,
    FileEntry,
    HashResult,
    fingerprint,
    hash_tree,
    save_hash_cache,
    write_files_manifest,
)
from vigil.data.label_counts import LabelCounts, count_label_bytes
from vigil.data.layout import (
    CLASSES,
    MANIFEST,
    STRATA,
    parse_label_line,
    parse_manifest,
    read_classes,
)
from vigil.errors import VigilError


def _stratum_value(value: Any) -> str:
    if value is None:
        return "<missing>"
    return value if isinstance(value, str) else json.dumps(value)


def summarize(
    root: Path, entries: list[FileEntry], counts: Mapping[str, LabelCounts] | None = None
) -> dict[str, Any]:
    """Counts for review (`metrics/dataset.json`): files and bytes per kind, labelled/unlabelled images,
    negatives, boxes and images per class, images per stratum value, and the dataset fingerprint.

    `counts` holds label files already counted (by the hash workers), so they are not read twice.
    Tolerant on purpose: unreadable manifest or label lines are counted under `unreadable`, since
    naming them is the validate stage's job and it runs after this one.
    """
    files = {k: {"count": 0, "bytes": 0} for k in KINDS}
    for e in entries:
        files[e.kind]["count"] += 1
        files[e.kind]["bytes"] += e.size
    unreadable = {
        "classes": 0,
        "manifest_lines": 0,
        "label_files": 0,
        "label_lines": 0,
        "unknown_class_ids": 0,
    }

    names: list[str] = []
    if (root / CLASSES).is_file():
        try:
            names = read_classes(root)
        except VigilError:
            unreadable["classes"] = 1
    boxes: Counter[str] = Counter({n: 0 for n in names})
    images: Counter[str] = Counter({n: 0 for n in names})
    negatives = 0
    for e in entries:
        if e.kind != "label":
            continue
        counted = counts.get(e.path) if counts is not None else None
        if counted is None:
            try:
                counted = count_label_bytes((root / e.path).read_bytes())
            except OSError:
                counted = None
            if counted is None:
                unreadable["label_files"] += 1
                continue
        seen: set[str] = set()
        for cls, n in counted.boxes.items():
            if 0 <= cls < len(names):
                name = names[cls]
            else:
                name = str(cls)
                if names:
                    unreadable["unknown_class_ids"] += n
            boxes[name] += n
            seen.add(name)
        unreadable["label_lines"] += counted.bad_lines
        images.update(seen)
        if not seen and not counted.bad_lines:
            negatives += 1
    total_boxes = sum(boxes.values())

    records: list[dict[str, Any]] = []
    if (root / MANIFEST).is_file():
        parsed = parse_manifest(root / MANIFEST)
        records = [m.record for m in parsed.lines]
        unreadable["manifest_lines"] = len(parsed.errors)
    unlabelled = sum(1 for r in records if r.get("labelled", True) is False)
    strata = {
        s: dict(sorted(Counter(_stratum_value(r.get(s)) for r in records).items())) for s in STRATA
    }

    return {
        "files": files,
        "total": {"count": len(entries), "bytes": sum(e.size for e in entries)},
        "images": {
            "on_disk": files["image"]["count"],
            "in_manifest": len(records),
            "labelled": len(records) - unlabelled,
            "unlabelled": unlabelled,
        },
        "labels": {"files": files["label"]["count"], "negatives": negatives, "boxes": total_boxes},
        "boxes_per_class": dict(sorted(boxes.items())),
        "images_per_class": dict(sorted(images.items())),
        "strata": strata,
        "unreadable": unreadable,
        "fingerprint": fingerprint(entries),
    }


def _code_signature() -> str:
    """sha256 of the modules that compute a summary: a changed counting rule invalidates cached ones."""
    import vigil.data.layout as layout

    digest = hashlib.sha256()
    for module in (__file__, layout.__file__):
        digest.update(Path(str(module)).read_bytes())
    return digest.hexdigest()


def hash_dataset(
    root: Path,
    *,
    files_out: Path | None = None,
    metrics_out: Path | None = None,
    workers: int = 2,
    cache_path: Path | None = None,
) -> tuple[HashResult, dict[str, Any]]:
    """The hash stage: hash `root`, write the per-file manifest and the summary (each when given)."""
    outputs = [p for p in (files_out, metrics_out) if p is not None]
    result = hash_tree(root, workers=workers, cache_path=cache_path, exclude=outputs, save=False)
    # the summary is a function of the bytes (the fingerprint) and of the code that counts them:
    # an unchanged dataset takes it from the cache instead of re-reading every label file
    key = f"{fingerprint(result.entries)} {_code_signature()}"
    if result.cache.summary is not None and result.cache.summary_key == key:
        summary = result.cache.summary
    else:
        summary = summarize(Path(root), result.entries, result.label_counts)
    save_hash_cache(result, (key, summary))
    if files_out is not None:
        write_files_manifest(files_out, result.entries)
    if metrics_out is not None:
        write_json_atomic(metrics_out, summary)
    return result, summary


def describe(summary: dict[str, Any], result: HashResult, seconds: float) -> str:
    """Two lines for a terminal: what the dataset holds, and what this run read (not in the metrics file,
    so that a cold and a warm run write byte-identical metrics)."""
    images, labels, total = summary["images"], summary["labels"], summary["total"]
    hashed = set(result.hashed)
    read_bytes = sum(e.size for e in result.entries if e.path in hashed)
    rate = read_bytes / 1e6 / seconds if seconds > 0 else 0.0
    return (
        f"{total['count']} files, {total['bytes'] / 1e6:.1f} MB: {images['on_disk']} images "
        f"({images['labelled']} labelled, {images['unlabelled']} unlabelled), {labels['files']} label files "
        f"({labels['negatives']} negatives, {labels['boxes']} boxes); "
        f"fingerprint {summary['fingerprint'][:16]}\n"
        f"hashed {len(result.hashed)} files, {result.cached} from cache, "
        f"in {seconds:.2f} s ({rate:.0f} MB/s read)"
    )
