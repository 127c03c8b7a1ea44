"""Ground truth as `ImageTruth`: a YOLO label file (normalized `class cx cy w h`) scaled to an image's pixels.

`load_truth` takes each image's frame (width, height) and record (strata, groups) from the
dataset's manifest, or the size from the image header when the manifest has none. `image_truth`
scales an image's label file into a frame given by the caller (a detections file's), and
`read_truth` any label file (the pool's withheld labels live outside `labels/`). A missing label
file means no objects, as in ultralytics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.layout import label_rel_for, read_labels, read_manifest, resolve_inside
from vigil.detection.boxes import yolo_to_xyxy
from vigil.detection.types import ImageTruth
from vigil.errors import VigilError


def read_truth(
    label: Path, image: str, width: int, height: int, record: Mapping[str, Any] | None = None
) -> ImageTruth:
    """The boxes of the label file `label` in pixels of a width × height image; no file = no boxes."""
    rows = read_labels(label) if Path(label).is_file() else []
    boxes = yolo_to_xyxy([(b.cx, b.cy, b.w, b.h) for b in rows], width, height)
    classes = np.array([b.cls for b in rows], dtype=np.int64)
    return ImageTruth(image, width, height, boxes, classes, dict(record or {}))


def image_truth(
    root: Path, image: str, width: int, height: int, record: Mapping[str, Any] | None = None
) -> ImageTruth:
    """The truth of `image` (relative to the dataset `root`) in a width × height frame."""
    return read_truth(
        resolve_inside(Path(root), label_rel_for(image)), image, width, height, record
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
        truths.append(image_truth(root, rel, width, height, record))
    return truths
