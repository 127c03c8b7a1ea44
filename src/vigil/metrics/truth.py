"""Ground truth as `ImageTruth`: a YOLO label file (normalized `class cx cy w h`) scaled to an image's pixels.

`load_truth` takes each image's frame (width, height) and record (strata, groups) from the
dataset's manifest, or the size from the image header when the manifest has none. `image_truth`
scales an image's label file into a frame given by the caller (a detections file's), and
`read_truth` any label file (the pool's withheld labels live outside `labels/`). A missing label
file means no objects, as in ultralytics. The record's `ignore` list (`{box: [cx, cy, w, h]
normalized, reason, class?}`, as the importers write it) becomes the truth's ignore regions, for the
named class or, without one, for every class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.layout import (
    MANIFEST,
    label_rel_for,
    read_classes,
    read_labels,
    read_manifest,
    resolve_inside,
)
from vigil.detection.boxes import yolo_to_xyxy
from vigil.detection.types import ANY_CLASS, ImageTruth
from vigil.errors import VigilError


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def ignore_regions(
    record: Mapping[str, Any], width: int, height: int, class_ids: Mapping[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The record's `ignore` regions in pixels of a width × height frame, and the class each holds
    for (`ANY_CLASS` when the entry names none, or a class this dataset does not have)."""
    entries = record.get("ignore") or []
    where = f"manifest line of {record.get('image')!r}"
    if not isinstance(entries, list):
        raise VigilError(
            f"{where}: `ignore` is not a list",
            field="ignore",
            hint="write `ignore` as a list of {box: [cx, cy, w, h], reason}",
        )
    boxes, classes = [], []
    for n, entry in enumerate(entries):
        box = entry.get("box") if isinstance(entry, dict) else None
        if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
            raise VigilError(
                f"{where}: ignore[{n}] has no box of four numbers",
                field=f"ignore[{n}].box",
                hint="give [cx, cy, w, h] as fractions of the image, as the importers write it",
            )
        boxes.append(box)
        name = entry.get("class")
        classes.append(class_ids.get(name, ANY_CLASS) if isinstance(name, str) else ANY_CLASS)
    return yolo_to_xyxy(boxes, width, height), np.array(classes, dtype=np.int64)


def read_truth(
    label: Path,
    image: str,
    width: int,
    height: int,
    record: Mapping[str, Any] | None = None,
    class_ids: Mapping[str, int] | None = None,
) -> ImageTruth:
    """The boxes of the label file `label` in pixels of a width × height image; no file = no boxes.

    `class_ids` (class name → id) resolves the class an ignore region of `record` names."""
    rows = read_labels(label) if Path(label).is_file() else []
    boxes = yolo_to_xyxy([(b.cx, b.cy, b.w, b.h) for b in rows], width, height)
    classes = np.array([b.cls for b in rows], dtype=np.int64)
    record = dict(record or {})
    ignore, ignore_classes = ignore_regions(record, width, height, class_ids or {})
    return ImageTruth(image, width, height, boxes, classes, record, ignore, ignore_classes)


def records_by_image(root: Path) -> dict[str, dict[str, Any]]:
    """The manifest's lines by image path; none when the folder has no manifest (bare YOLO labels)."""
    root = Path(root)
    if not (root / MANIFEST).is_file():
        return {}
    return {str(r["image"]): r for r in read_manifest(root) if isinstance(r.get("image"), str)}


def class_ids_of(root: Path) -> dict[str, int]:
    return {name: i for i, name in enumerate(read_classes(Path(root)))}


def image_truth(
    root: Path,
    image: str,
    width: int,
    height: int,
    record: Mapping[str, Any] | None = None,
    class_ids: Mapping[str, int] | None = None,
) -> ImageTruth:
    """The truth of `image` (relative to the dataset `root`) in a width × height frame."""
    if class_ids is None and record and record.get("ignore"):
        class_ids = class_ids_of(root)
    return read_truth(
        resolve_inside(Path(root), label_rel_for(image)), image, width, height, record, class_ids
    )


def _image_size(root: Path, rel: str, record: Mapping[str, Any]) -> tuple[int, int]:
    width, height = record.get("width"), record.get("height")
    if type(width) is int and type(height) is int and width > 0 and height > 0:  # a bool is no size
        return width, height
    from PIL import Image

    path = resolve_inside(root, rel)
    try:
        with Image.open(path) as picture:  # header only
            return picture.size
    except (
        Exception
    ) as exc:  # OSError, DecompressionBombError, or ultralytics' Image.open patch's ImportError
        raise VigilError(
            f"cannot read the image size: {exc}",
            path=path,
            hint="run `vigil data check` on the dataset, or give width and height in the manifest",
        ) from None


def load_truth(root: Path, images: Sequence[str]) -> list[ImageTruth]:
    """The truth of `images` (paths relative to `root`), in list order, framed by the manifest."""
    root = Path(root)
    records = {r.get("image"): r for r in read_manifest(root)}
    class_ids = class_ids_of(root) if any(r.get("ignore") for r in records.values()) else {}
    truths = []
    for rel in images:
        record = records.get(rel)
        if record is None:
            raise VigilError(
                f"image {rel!r} is not in the manifest",
                path=root / "manifest.jsonl",
                hint="re-run the `split` stage on this dataset",
            )
        width, height = _image_size(root, rel, record)
        truths.append(image_truth(root, rel, width, height, record, class_ids))
    return truths
