"""Ground truth and detections in one shape: per image, boxes in original-image pixels (x1, y1, x2, y2).

Ground truth comes from the canonical dataset (YOLO-normalized labels scaled by the manifest's
width/height, read from the image header when absent); detections come from a detector. Both are
plain numpy arrays so the metrics below never depend on how a box was produced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.layout import label_rel_for, read_labels, read_manifest, resolve_inside
from vigil.errors import VigilError


def _boxes(rows: Any) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _ints(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class ImageTruth:
    """The true boxes of one image and its manifest record (strata, groups)."""

    image: str                                  # path relative to the dataset root
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: _boxes([]))   # (N, 4) x1 y1 x2 y2, pixels
    classes: np.ndarray = field(default_factory=lambda: _ints([]))  # (N,) class ids
    record: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", _boxes(self.boxes))
        object.__setattr__(self, "classes", _ints(self.classes))
        if len(self.boxes) != len(self.classes):
            raise ValueError(f"{self.image}: {len(self.boxes)} boxes but {len(self.classes)} classes")


@dataclass(frozen=True)
class ImageDetections:
    """A detector's output for one image."""

    boxes: np.ndarray = field(default_factory=lambda: _boxes([]))   # (M, 4) x1 y1 x2 y2, pixels
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (M,)
    classes: np.ndarray = field(default_factory=lambda: _ints([]))  # (M,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", _boxes(self.boxes))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "classes", _ints(self.classes))
        if not len(self.boxes) == len(self.scores) == len(self.classes):
            raise ValueError("detections need as many scores and classes as boxes")

    def above(self, conf: float) -> ImageDetections:
        keep = self.scores >= conf
        return ImageDetections(self.boxes[keep], self.scores[keep], self.classes[keep])


def box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of two sets of x1 y1 x2 y2 boxes (no +1 pixel convention, as pycocotools)."""
    a, b = _boxes(a), _boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _image_size(root: Path, rel: str, record: Mapping[str, Any]) -> tuple[int, int]:
    width, height = record.get("width"), record.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    from PIL import Image

    with Image.open(resolve_inside(root, rel)) as image:  # header only
        return image.size


def load_truth(root: Path, images: Sequence[str]) -> list[ImageTruth]:
    """The true boxes of `images` (paths relative to `root`), in list order; no label file = no boxes."""
    root = Path(root)
    records = {r.get("image"): r for r in read_manifest(root)}
    truths = []
    for rel in images:
        record = records.get(rel)
        if record is None:
            raise VigilError(f"image {rel!r} is not in the manifest", path=root / "manifest.jsonl",
                             hint="re-run the `split` stage on this dataset")
        width, height = _image_size(root, rel, record)
        label = root / label_rel_for(rel)
        rows = read_labels(label) if label.is_file() else []
        boxes = [((b.cx - b.w / 2) * width, (b.cy - b.h / 2) * height,
                  (b.cx + b.w / 2) * width, (b.cy + b.h / 2) * height) for b in rows]
        truths.append(ImageTruth(rel, width, height, _boxes(boxes), _ints([b.cls for b in rows]), record))
    return truths
