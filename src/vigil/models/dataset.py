"""The dataset as ultralytics reads it, built at run time in a work folder and never inside data/.

ultralytics writes beside what it reads: a `labels/<dir>.cache` per label folder and, with
`cache='disk'`, an `.npy` per image. Raw data must stay untouched (DVC would see a changed
`data/`), so each run gets a view: `images/…` are per-file symlinks (copies where symlinks are
not allowed) into the dataset, `labels/…` are copies (tiny text files), the split lists hold
`./images/…` entries relative to the view, and `data.yaml` carries the only absolute path. The
view lives in the run folder, outside every tracked output.

An image whose manifest line lists `ignore` regions (VisDrone's ignored regions, COCO crowds) is
not linked but copied with those regions filled with ultralytics' padding grey, outside its true
boxes: unlabelled objects there would otherwise be learnt as background.
"""

from __future__ import annotations

import math
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vigil.atomic import write_text_atomic
from vigil.data.layout import label_rel_for, read_classes, resolve_inside
from vigil.errors import VigilError
from vigil.metrics.truth import ignore_regions, read_truth, records_by_image


def subset(items: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A seeded sample of ceil(fraction * n) items (at least one), kept in list order."""
    if fraction >= 1.0 or not items:
        return list(items)
    keep = max(1, math.ceil(fraction * len(items)))
    chosen = set(random.Random(seed).sample(range(len(items)), keep))
    return [item for i, item in enumerate(items) if i in chosen]


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy2(src, dst)


IGNORE_FILL = 114  # ultralytics' letterbox padding value: "no content" to the network


def _records_with_ignore(data_root: Path) -> dict[str, list[Any]]:
    """image path → its manifest `ignore` list, for the images that have one (no manifest: none)."""
    return {rel: r["ignore"] for rel, r in records_by_image(data_root).items() if r.get("ignore")}


def write_masked(image: Path, label: Path | None, record: Mapping[str, Any], dst: Path) -> int:
    """Copy `image` to `dst` with its ignore regions filled (`IGNORE_FILL`), except where a true
    box of `label` lies; returns how many regions were filled."""
    import cv2

    picture = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    if picture is None:
        raise VigilError("the image does not decode", path=image, hint="run `vigil data check`")
    height, width = picture.shape[:2]
    regions, _ = ignore_regions(record, width, height, {})
    truth = read_truth(label, str(image), width, height) if label is not None else None
    keep = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in np.rint(truth.boxes if truth is not None else []).astype(int):
        keep[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    fill = np.zeros_like(keep)
    for x1, y1, x2, y2 in np.rint(regions).astype(int):
        fill[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    picture[fill & ~keep] = IGNORE_FILL
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(dst), picture):
        raise VigilError("cannot write the masked copy", path=dst, hint="check the free space")
    return len(regions)


def build_view(data_root: Path, lists: Mapping[str, Sequence[str]], out_dir: Path,
               labels: Mapping[str, str] | None = None) -> Path:
    """Write the view of `data_root` restricted to `lists` (split name → image paths); return its data.yaml.

    `labels` (image path → YOLO label text) replaces or supplies label files in the view only, e.g. a
    teacher's pseudo-labels for unlabelled pool images; the dataset's own files are never changed.
    """
    labels = labels or {}
    data_root = Path(data_root)
    names = read_classes(data_root)
    ignore = _records_with_ignore(data_root)
    masked = regions = 0
    out_dir = Path(out_dir).resolve()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    done: set[str] = set()
    for split, items in lists.items():
        if not items:
            raise VigilError(f"the {split} list is empty", field=split,
                             hint="the split needs at least one image for ultralytics to train or validate")
        for rel in items:
            if rel in done:
                continue
            image = resolve_inside(data_root, rel)
            if not image.is_file():
                raise VigilError(f"image {rel!r} of the {split} list is missing", path=data_root,
                                 hint="re-run the `split` stage on this dataset")
            label, target = data_root / label_rel_for(rel), out_dir / label_rel_for(rel)
            if rel in ignore:
                regions += write_masked(image, label if label.is_file() else None,
                                        {"image": rel, "ignore": ignore[rel]}, out_dir / rel)
                masked += 1
            else:
                _link_or_copy(image, out_dir / rel)
            if rel in labels:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(labels[rel], encoding="utf-8")
            elif label.is_file():  # no label file = a background image, as in ultralytics
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(label, target)
            done.add(rel)
        write_text_atomic(out_dir / f"{split}.txt", "".join(f"./{rel}\n" for rel in items))
    spec = {"path": str(out_dir), **{split: f"{split}.txt" for split in lists},
            "names": dict(enumerate(names))}
    if masked:
        print(f"dataset view: {regions} ignore regions filled in {masked} images (not learnt as background)")
    yaml_path = out_dir / "data.yaml"
    write_text_atomic(yaml_path, yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return yaml_path
