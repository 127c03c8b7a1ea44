"""The detections file: what `evaluate` writes for one split and `calibrate` reads back.

One JSON file per split:

```
{
  "model": "student",                 optional: which model, settings… (other top-level keys are kept, not read)
  "images": [
    {"image": "images/lab/000001.jpg",  path relative to the dataset folder, as in the split lists
     "width": 320, "height": 240,       the image size in pixels (the boxes' frame)
     "detections": [
       {"xyxy": [x1, y1, x2, y2],       box corners in pixels of that image, x1 <= x2 and y1 <= y2
        "score": 0.87,                  the raw confidence the model outputs after NMS, in [0, 1]
        "class": 2},                    class id = line of classes.txt
       …]},
    …]
}
```

List every image of the split, also those with no detection (`"detections": []`). Write the
detections at the low confidence used for mAP (e.g. 0.001); `calibrate.min_score` decides what is
used. `write_detections` writes this format atomically; `read_detections` checks it field by field
and names the first bad one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vigil.atomic import write_json_atomic
from vigil.detection.boxes import as_boxes
from vigil.detection.types import ImageDetections
from vigil.errors import VigilError

FORMAT_HINT = "see the format in src/vigil/detection/detections_file.py"


class DetectionsEntry(NamedTuple):
    """One image of a detections file: its path, the frame its boxes are in, and the detections."""

    image: str
    width: int
    height: int
    detections: ImageDetections


def detections_entry(
    image: str, width: int, height: int, dets: Sequence[tuple[Sequence[float], float, int]]
) -> DetectionsEntry:
    """An entry from (xyxy, score, class) triples (tests and hand-written files use this)."""
    boxes = as_boxes([d[0] for d in dets])
    return DetectionsEntry(
        image,
        width,
        height,
        ImageDetections(
            boxes,
            np.array([d[1] for d in dets], dtype=np.float64),
            np.array([d[2] for d in dets], dtype=np.int64),
        ),
    )


def write_detections(path: Path, entries: Sequence[DetectionsEntry], **extra: Any) -> None:
    """Write the detections file (the evaluate stage's side of the contract), atomically."""
    doc = dict(extra)
    doc["images"] = [
        {
            "image": e.image,
            "width": int(e.width),
            "height": int(e.height),
            "detections": [
                {"xyxy": [float(v) for v in box], "score": float(s), "class": int(c)}
                for box, s, c in zip(
                    e.detections.boxes, e.detections.scores, e.detections.classes, strict=True
                )
            ],
        }
        for e in entries
    ]
    write_json_atomic(path, doc)


def _number(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise VigilError(f"expected a finite number, got {value!r}", path=path, field=where)
    return float(value)


def _size(value: Any, path: Path, where: str) -> int:
    number = _number(value, path, where)
    if number <= 0 or not number.is_integer():
        raise VigilError(
            f"image size must be a positive whole number of pixels, got {value!r}",
            path=path,
            field=where,
        )
    return int(number)


def _parse_entry(entry: Any, path: Path, where: str) -> DetectionsEntry:
    if not isinstance(entry, dict):
        raise VigilError("expected an object", path=path, field=where)
    for key in ("image", "width", "height", "detections"):
        if key not in entry:
            raise VigilError(f"missing {key!r}", path=path, field=where, hint=FORMAT_HINT)
    image = entry["image"]
    if not isinstance(image, str) or not image:
        raise VigilError(
            f"expected an image path, got {image!r}", path=path, field=f"{where}.image"
        )
    width, height = (_size(entry[k], path, f"{where}.{k}") for k in ("width", "height"))
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
        if xyxy[2] < xyxy[0] or xyxy[3] < xyxy[1]:
            raise VigilError(
                f"xyxy must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2, got {box!r}",
                path=path,
                field=f"{at}.xyxy",
            )
        score = _number(det["score"], path, f"{at}.score")
        if not 0.0 <= score <= 1.0:
            raise VigilError(
                f"score must be in [0, 1], got {score}", path=path, field=f"{at}.score"
            )
        cls = det["class"]
        if isinstance(cls, bool) or not isinstance(cls, int) or cls < 0:
            raise VigilError(
                f"class must be a class id (int >= 0), got {cls!r}", path=path, field=f"{at}.class"
            )
        dets.append((xyxy, score, cls))
    return detections_entry(image, width, height, dets)


def read_detections(path: Path, allowed: Collection[str] | None = None) -> list[DetectionsEntry]:
    """Read and check a detections file; with `allowed`, every image must be in that split list."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise VigilError(
            "detections file not found", path=path, hint="run the evaluate stage first"
        ) from None
    except UnicodeDecodeError as exc:
        raise VigilError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path=path) from None
    except json.JSONDecodeError as exc:
        raise VigilError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=path) from None
    except (OSError, RecursionError) as exc:
        raise VigilError(f"cannot read the detections file: {exc}", path=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise VigilError("expected an object with an 'images' list", path=path, hint=FORMAT_HINT)
    entries = [_parse_entry(entry, path, f"images[{i}]") for i, entry in enumerate(doc["images"])]
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if e.image in seen:
            raise VigilError(
                f"image {e.image!r} is listed twice", path=path, field=f"images[{i}].image"
            )
        seen.add(e.image)
        if allowed is not None and e.image not in allowed:
            raise VigilError(
                f"image {e.image!r} is not in this split's list",
                path=path,
                field=f"images[{i}].image",
                hint="write one detections file per split (val for fitting, test for measuring)",
            )
    return entries
