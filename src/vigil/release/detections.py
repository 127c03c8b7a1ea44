"""The detections file (written by `evaluate`, read by `calibrate`) and the ground truth it is matched to.

One file per split, JSON:

```
{
  "model": "student",                 optional: which model, settings… (other top-level keys are kept, not read)
  "images": [
    {"image": "images/lab/000001.jpg",  path relative to the dataset folder, as in the split lists
     "width": 320, "height": 240,       the image size in pixels (the boxes' frame)
     "detections": [
       {"xyxy": [x1, y1, x2, y2],       box corners in pixels of that image
        "score": 0.87,                  the raw confidence the model outputs after NMS, in [0, 1]
        "class": 2},                    class id = line of classes.txt
       …]},
    …]
}
```

List every image of the split, also those with no detection (`"detections": []`). Write the
detections at the low confidence used for mAP (e.g. 0.001); `calibrate.min_score` decides what is
used. `write_detections` writes this format atomically; `read_detections` checks it field by field.
The ground truth is the canonical dataset's YOLO labels (`labels/…/*.txt`, normalized `class cx cy w h`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import write_json_atomic
from vigil.data.layout import label_rel_for, read_labels, resolve_inside
from vigil.errors import VigilError


@dataclass(frozen=True)
class ImageDetections:
    """One image's detections: boxes (n, 4) xyxy pixels, scores (n,), classes (n,)."""

    image: str
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


@dataclass(frozen=True)
class ImageTruth:
    """One image's ground-truth boxes (m, 4) xyxy pixels and classes (m,)."""

    boxes: np.ndarray
    classes: np.ndarray


def image_detections(image: str, width: int, height: int, dets: list[tuple[list[float], float, int]]
                     ) -> ImageDetections:
    """Build one image's record from (xyxy, score, class) triples (tests and writers use this)."""
    boxes = np.array([d[0] for d in dets], dtype=np.float64).reshape(-1, 4)
    return ImageDetections(image, width, height, boxes, np.array([d[1] for d in dets], dtype=np.float64),
                           np.array([d[2] for d in dets], dtype=np.int64))


def write_detections(path: Path, images: list[ImageDetections], **extra: Any) -> None:
    """Write the detections file (the evaluate stage's side of the contract).

    From arrays already at hand: `ImageDetections(image, width, height, boxes, scores, classes)` with
    boxes (n, 4) xyxy pixels — e.g. `vigil.metrics.boxes.ImageDetections` plus its truth's image and size.
    """
    doc = dict(extra)
    doc["images"] = [{"image": im.image, "width": im.width, "height": im.height,
                      "detections": [{"xyxy": [float(v) for v in box], "score": float(s), "class": int(c)}
                                     for box, s, c in zip(im.boxes, im.scores, im.classes)]}
                     for im in images]
    write_json_atomic(path, doc)


def _number(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise VigilError(f"expected a finite number, got {value!r}", path=path, field=where)
    return float(value)


def _parse_image(entry: Any, path: Path, where: str) -> ImageDetections:
    if not isinstance(entry, dict):
        raise VigilError("expected an object", path=path, field=where)
    for key in ("image", "width", "height", "detections"):
        if key not in entry:
            raise VigilError(f"missing {key!r}", path=path, field=where,
                             hint="see the format in src/vigil/release/detections.py")
    image = entry["image"]
    if not isinstance(image, str) or not image:
        raise VigilError(f"expected an image path, got {image!r}", path=path, field=f"{where}.image")
    width, height = (_number(entry[k], path, f"{where}.{k}") for k in ("width", "height"))
    if width <= 0 or height <= 0:
        raise VigilError(f"image size must be positive, got {width}x{height}", path=path, field=where)
    if not isinstance(entry["detections"], list):
        raise VigilError("expected a list", path=path, field=f"{where}.detections")
    dets = []
    for j, det in enumerate(entry["detections"]):
        at = f"{where}.detections[{j}]"
        if not isinstance(det, dict) or not {"xyxy", "score", "class"} <= set(det):
            raise VigilError("expected an object with xyxy, score, class", path=path, field=at)
        box = det["xyxy"]
        if not isinstance(box, list) or len(box) != 4:
            raise VigilError(f"xyxy must be 4 numbers, got {box!r}", path=path, field=f"{at}.xyxy")
        xyxy = [_number(v, path, f"{at}.xyxy") for v in box]
        score = _number(det["score"], path, f"{at}.score")
        if not 0.0 <= score <= 1.0:
            raise VigilError(f"score must be in [0, 1], got {score}", path=path, field=f"{at}.score")
        cls = det["class"]
        if isinstance(cls, bool) or not isinstance(cls, int) or cls < 0:
            raise VigilError(f"class must be a class id (int >= 0), got {cls!r}", path=path, field=f"{at}.class")
        dets.append((xyxy, score, cls))
    return image_detections(image, int(width), int(height), dets)


def read_detections(path: Path, allowed: set[str] | None = None) -> list[ImageDetections]:
    """Read and check a detections file; with `allowed`, every image must be in that split list."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError("detections file not found", path=path, hint="run the evaluate stage first") from None
    except json.JSONDecodeError as exc:
        raise VigilError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise VigilError("expected an object with an 'images' list", path=path,
                         hint="see the format in src/vigil/release/detections.py")
    images = [_parse_image(entry, path, f"images[{i}]") for i, entry in enumerate(doc["images"])]
    seen: set[str] = set()
    for i, im in enumerate(images):
        if im.image in seen:
            raise VigilError(f"image {im.image!r} is listed twice", path=path, field=f"images[{i}].image")
        seen.add(im.image)
        if allowed is not None and im.image not in allowed:
            raise VigilError(f"image {im.image!r} is not in this split's list", path=path,
                             field=f"images[{i}].image",
                             hint="write one detections file per split (val for fitting, test for measuring)")
    return images


def read_split_list(path: Path) -> set[str]:
    """An ultralytics-style split list: one image path (relative to the dataset folder) per line."""
    path = Path(path)
    if not path.is_file():
        raise VigilError("split list not found", path=path, hint="run the split stage first")
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def load_truth(data: Path, image: ImageDetections) -> ImageTruth:
    """The image's YOLO labels as pixel xyxy boxes in the detections' frame; no label file = no objects."""
    label = resolve_inside(Path(data), label_rel_for(image.image))
    boxes = read_labels(label) if label.is_file() else []
    w, h = image.width, image.height
    xyxy = np.array([[(b.cx - b.w / 2) * w, (b.cy - b.h / 2) * h, (b.cx + b.w / 2) * w, (b.cy + b.h / 2) * h]
                     for b in boxes], dtype=np.float64).reshape(-1, 4)
    return ImageTruth(xyxy, np.array([b.cls for b in boxes], dtype=np.int64))
