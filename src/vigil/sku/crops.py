"""Classifier inputs cut from boxes: ground-truth boxes (with jitter like a detector's) or detections.

Training crops come from the truth, but at run time the classifier sees the detector's boxes, which
are a little off: too large, too small, shifted. `jitter_boxes` draws that error (each side scaled
by up to ± `scale`, the centre shifted by up to ± `shift` of the box's size, seeded), so training
sees what deployment will. `cut_crops` is the one cutter for both: boxes in x1 y1 x2 y2 pixels
(`vigil.detection`), clipped to the image, each resized (stretched, as the crops are matched only
with each other) to a square `size`.

Which SKU a true box is: the manifest's `objects.<field>` (one name per label line, as
`objects.distance` holds one distance per line), or, with no field, the box's class name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.layout import read_classes, resolve_inside
from vigil.detection.boxes import as_boxes
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.metrics.truth import load_truth


@dataclass(frozen=True)
class Jitter:
    scale: float  # each side × a factor drawn in [1 − scale, 1 + scale]
    shift: float  # the centre moved by up to ± shift × the box's width (x) and height (y)

    def __post_init__(self) -> None:
        if not 0 <= self.scale < 1 or not 0 <= self.shift < 1:
            raise VigilError(
                f"jitter scale {self.scale} and shift {self.shift} must be in [0, 1)",
                field="jitter",
            )


NO_JITTER = Jitter(0.0, 0.0)


@dataclass(frozen=True)
class CropItem:
    """One true object: the image (relative to the dataset root), its box (x1 y1 x2 y2 pixels), its SKU."""

    image: str
    box: tuple[float, float, float, float]
    sku: str


def jitter_boxes(boxes: Any, jitter: Jitter, rng: np.random.Generator) -> np.ndarray:
    """Boxes moved and resized as a detector's would be; the draw depends only on `rng`."""
    b = as_boxes(boxes)
    if not len(b) or (jitter.scale == 0 and jitter.shift == 0):
        return b.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    draw = rng.uniform(-1.0, 1.0, size=(len(b), 4))
    cx, cy = cx + draw[:, 0] * jitter.shift * w, cy + draw[:, 1] * jitter.shift * h
    w, h = w * (1 + draw[:, 2] * jitter.scale), h * (1 + draw[:, 3] * jitter.scale)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def cut_crops(image: np.ndarray, boxes: Any, size: int) -> np.ndarray:
    """(N, size, size, 3) uint8 crops of an (H, W, 3) uint8 image; boxes are clipped to it (≥ 1 pixel)."""
    import cv2

    height, width = image.shape[:2]
    b = as_boxes(boxes)
    out = np.zeros((len(b), size, size, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(b):
        left = int(np.clip(np.floor(x1), 0, width - 1))
        top = int(np.clip(np.floor(y1), 0, height - 1))
        right = int(np.clip(np.ceil(x2), left + 1, width))
        bottom = int(np.clip(np.ceil(y2), top + 1, height))
        patch = image[top:bottom, left:right]
        shrink = patch.shape[0] > size or patch.shape[1] > size
        out[i] = cv2.resize(
            patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    return out


def detection_crops(image: np.ndarray, detections: ImageDetections, size: int) -> np.ndarray:
    """The crops of a detector's boxes on one image, in detection order (no jitter: they are real)."""
    return cut_crops(image, detections.boxes, size)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; an unreadable file is a user-facing error."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise VigilError(
            "cannot decode the image", path=path, hint="run `vigil data check` on the dataset"
        )
    return np.ascontiguousarray(image[:, :, ::-1])


def object_skus(truth: ImageTruth, field: str | None, class_names: Sequence[str]) -> list[str]:
    """The SKU of each true box: `objects.<field>` of its manifest line, else its class name."""
    if field is None:
        return [
            class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c))
            for c in truth.classes
        ]
    objects = truth.record.get("objects")
    values = objects.get(field) if isinstance(objects, Mapping) else None
    if (
        not isinstance(values, list)
        or len(values) != len(truth.boxes)
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise VigilError(
            f"objects.{field} is not a list of {len(truth.boxes)} SKU names (one per label line)",
            path=truth.image,
            field=f"objects.{field}",
            hint="give every box of the image its SKU, in label-file order",
        )
    return list(values)


def truth_items(root: Path, images: Sequence[str], field: str | None) -> list[CropItem]:
    """Every true box of `images` (paths relative to the dataset `root`) with its SKU, in file order."""
    root = Path(root)
    names = read_classes(root)
    items = []
    for truth in load_truth(root, images):
        for box, sku in zip(truth.boxes, object_skus(truth, field, names), strict=True):
            items.append(
                CropItem(
                    truth.image, (float(box[0]), float(box[1]), float(box[2]), float(box[3])), sku
                )
            )
    return items


def crops_of_items(
    root: Path,
    items: Sequence[CropItem],
    size: int,
    jitter: Jitter,
    rng: np.random.Generator,
    images: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """(N, size, size, 3) crops of `items`, in order, jittered by `rng`; each image decoded once
    (or taken from `images`, a cache of decoded images by path, so epochs do not decode again)."""
    out = np.zeros((len(items), size, size, 3), dtype=np.uint8)
    boxes = jitter_boxes([item.box for item in items], jitter, rng)
    by_image: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_image.setdefault(item.image, []).append(i)
    for rel, rows in by_image.items():
        picture = (
            images[rel]
            if images is not None and rel in images
            else read_rgb(resolve_inside(Path(root), rel))
        )
        out[rows] = cut_crops(picture, boxes[rows], size)
    return out


def decode_images(root: Path, items: Sequence[CropItem]) -> dict[str, np.ndarray]:
    """The decoded images `items` cut from, by path (memory: the images' pixels, once)."""
    return {
        rel: read_rgb(resolve_inside(Path(root), rel))
        for rel in dict.fromkeys(i.image for i in items)
    }
