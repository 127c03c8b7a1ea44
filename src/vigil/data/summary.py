"""What a dataset holds, for review (`metrics/dataset.json`), and the hash stage that writes it.

`summary_from` turns a dataset's `Tally` (files and bytes per kind, boxes and images per class id,
negatives, the manifest's strata) into the summary; `summarize` builds that tally by reading the
files an entry list names; `hash_dataset` is the hash stage (hash, per-file manifest, summary), whose
workers tally each file as they hash it; `describe` is its two terminal lines.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from vigil.atomic import write_text_atomic
from vigil.data.hashing import (
    KINDS,
    FileEntry,
    HashResult,
    fingerprint,
    hash_tree,
    save_hash_cache,
)
from vigil.data.label_counts import Tally, label_extra, manifest_extra
from vigil.data.layout import CLASSES, STRATA, read_classes
from vigil.errors import VigilError


def json_text(obj: Any) -> str:
    """The text `vigil.atomic.write_json_atomic` writes for `obj` (sorted keys, trailing newline)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def summarize(root: Path, entries: list[FileEntry]) -> dict[str, Any]:
    """Counts for review (`metrics/dataset.json`) of the files `entries` lists under `root`, reading
    every label file and the manifest (the hash stage has them counted by its workers instead).

    Tolerant on purpose: unreadable manifest or label lines are counted under `unreadable`, since
    naming them is the validate stage's job and it runs after this one.
    """
    tally = Tally()
    for e in entries:
        extra: Any = None
        if e.kind == "label":
            try:
                extra = label_extra((root / e.path).read_bytes())
            except OSError:
                extra = None
        elif e.kind == "manifest":
            extra = manifest_extra(root / e.path)
        tally.add_file(e.kind, e.size, extra)
    return summary_from(root, tally, fingerprint(entries))


def summary_from(root: Path, tally: Tally, dataset_fingerprint: str) -> dict[str, Any]:
    """metrics/dataset.json from a dataset's Tally: files and bytes per kind, labelled/unlabelled
    images, negatives, boxes and images per class (named by classes.txt), images per stratum value,
    what could not be read, and the fingerprint."""
    files = {k: {"count": 0, "bytes": 0} for k in KINDS}
    for kind, (n, size) in tally.kinds.items():
        files[kind] = {"count": n, "bytes": size}
    names: list[str] = []
    unreadable_classes = 0
    if (root / CLASSES).is_file():
        try:
            names = read_classes(root)
        except VigilError:
            unreadable_classes = 1

    def name_of(cls: int) -> str:
        return names[cls] if 0 <= cls < len(names) else str(cls)

    boxes: Counter[str] = Counter({n: 0 for n in names})
    images: Counter[str] = Counter({n: 0 for n in names})
    unknown = 0
    for cls, n in tally.boxes.items():
        boxes[name_of(cls)] += n
        if names and not 0 <= cls < len(names):
            unknown += n
    for ids, n in tally.id_sets.items():
        for name in {name_of(cls) for cls in ids}:
            images[name] += n
    manifest = tally.manifest or {"records": 0, "unlabelled": 0, "errors": 0, "strata": {}}
    records, unlabelled = manifest["records"], manifest["unlabelled"]
    return {
        "files": files,
        "total": {
            "count": sum(f["count"] for f in files.values()),
            "bytes": sum(f["bytes"] for f in files.values()),
        },
        "images": {
            "on_disk": files["image"]["count"],
            "in_manifest": records,
            "labelled": records - unlabelled,
            "unlabelled": unlabelled,
        },
        "labels": {
            "files": files["label"]["count"],
            "negatives": tally.negatives,
            "boxes": sum(tally.boxes.values()),
        },
        "boxes_per_class": dict(sorted(boxes.items())),
        "images_per_class": dict(sorted(images.items())),
        "strata": {s: manifest["strata"].get(s, {}) for s in STRATA},
        "unreadable": {
            "classes": unreadable_classes,
            "manifest_lines": manifest["errors"],
            "label_files": tally.unreadable_labels,
            "label_lines": tally.bad_lines,
            "unknown_class_ids": unknown,
        },
        "fingerprint": dataset_fingerprint,
    }


def hash_dataset(
    root: Path,
    *,
    files_out: Path | None = None,
    metrics_out: Path | None = None,
    workers: int = 2,
    cache_path: Path | None = None,
) -> tuple[HashResult, dict[str, Any]]:
    """The hash stage: hash `root`, write the per-file manifest and the summary (each when given).

    An output whose bytes would not change is not rewritten (its mtime stays, so DVC need not
    re-hash it)."""
    outputs = [p for p in (files_out, metrics_out) if p is not None]
    result = hash_tree(root, workers=workers, cache_path=cache_path, exclude=outputs, save=False)
    summary = summary_from(Path(root), result.tally, result.fingerprint)
    save_hash_cache(result)
    if files_out is not None:
        _write_if_changed(files_out, result.manifest_text)
    if metrics_out is not None:
        _write_if_changed(metrics_out, json_text(summary))
    return result, summary


def _write_if_changed(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    try:
        if Path(path).stat().st_size == len(data) and Path(path).read_bytes() == data:
            return
    except OSError:
        pass
    write_text_atomic(Path(path), text)


def describe(summary: dict[str, Any], result: HashResult, seconds: float) -> str:
    """Two lines for a terminal: what the dataset holds, and what this run read (not in the metrics file,
    so that a cold and a warm run write byte-identical metrics)."""
    images, labels, total = summary["images"], summary["labels"], summary["total"]
    rate = result.hashed_bytes / 1e6 / seconds if seconds > 0 else 0.0
    return (
        f"{total['count']} files, {total['bytes'] / 1e6:.1f} MB: {images['on_disk']} images "
        f"({images['labelled']} labelled, {images['unlabelled']} unlabelled), {labels['files']} label files "
        f"({labels['negatives']} negatives, {labels['boxes']} boxes); "
        f"fingerprint {summary['fingerprint'][:16]}\n"
        f"hashed {len(result.hashed)} files, {result.cached} from cache, "
        f"in {seconds:.2f} s ({rate:.0f} MB/s read)"
    )
