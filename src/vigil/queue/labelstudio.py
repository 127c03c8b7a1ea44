"""Label Studio's formats, both ways: tasks with the model's guesses in, finished annotations out.

Import (what `vigil queue rank` writes): a JSON list of tasks, each `{"data": {"image": URL,
"vigil_image": the dataset path}, "predictions": [{"model_version", "score", "result": [region…]}]}`,
a region being `{"from_name": "label", "to_name": "image", "type": "rectanglelabels",
"original_width", "original_height", "value": {"x", "y", "width", "height", "rotation": 0,
"rectanglelabels": [class]}, "score"}` with x, y, width, height in percent of the image. The
labelling config (`labeling_config`) names the same `label` / `image` pair and one label per class.

Export (what `vigil queue accept` reads): Label Studio's JSON export, the same tasks with
`annotations[].result[]` in the same region format. Per task the last annotation not cancelled
counts (a later one is a correction); a task nobody labelled (or only skipped) is left in the pool.
`data.vigil_image` says which dataset image a task is, so the URL Label Studio served it from does
not matter. Everything is checked before anything is returned: one error names the file, the task
and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from vigil.data.importers.common import Where, check_box, number
from vigil.detection.types import ImageDetections
from vigil.errors import VigilError

FROM_NAME = "label"  # the RectangleLabels control
TO_NAME = "image"  # the Image object (and the task's data key)
REGION = "rectanglelabels"
IMAGE_KEY = "vigil_image"  # data key: the image's path in the dataset
EXPORT_HINT = "export the project from Label Studio as JSON (not JSON-MIN, CSV or YOLO)"


def labeling_config(classes: list[str]) -> str:
    """The labelling interface: the image and one rectangle label per class, in class order."""
    labels = "".join(f"    <Label value={quoteattr(name)}/>\n" for name in classes)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${TO_NAME}" zoom="true"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">\n'
        f"{labels}"
        "  </RectangleLabels>\n"
        "</View>\n"
    )


def regions(
    dets: ImageDetections, classes: list[str], width: int, height: int
) -> list[dict[str, Any]]:
    """The detections as Label Studio rectangle regions, percent of the image, each with its score."""
    out = []
    for k, (box, score, cls) in enumerate(zip(dets.boxes, dets.scores, dets.classes, strict=True)):
        x1, y1 = max(float(box[0]), 0.0), max(float(box[1]), 0.0)
        x2, y2 = min(float(box[2]), float(width)), min(float(box[3]), float(height))
        out.append(
            {
                "id": f"p{k}",
                "from_name": FROM_NAME,
                "to_name": TO_NAME,
                "type": REGION,
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "score": round(float(score), 5),
                "value": {
                    "x": 100.0 * x1 / width,
                    "y": 100.0 * y1 / height,
                    "width": 100.0 * (x2 - x1) / width,
                    "height": 100.0 * (y2 - y1) / height,
                    "rotation": 0,
                    "rectanglelabels": [classes[int(cls)]],
                },
            }
        )
    return out


def task(
    url: str,
    image: str,
    dets: ImageDetections,
    classes: list[str],
    size: tuple[int, int],
    model_version: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """One import task: the image (served at `url`), its dataset path, and the model's guesses."""
    width, height = size
    score = float(dets.scores.mean()) if len(dets.scores) else 0.0
    return {
        "data": {TO_NAME: url, IMAGE_KEY: image},
        "meta": meta,
        "predictions": [
            {
                "model_version": model_version,
                "score": round(score, 5),
                "result": regions(dets, classes, width, height),
            }
        ],
    }


@dataclass(frozen=True)
class HumanLabels:
    """One finished task: the dataset image and its boxes in pixels (class id, x, y, w, h)."""

    image: str
    task: str
    boxes: list[tuple[int, float, float, float, float]]


def _field(obj: dict[str, Any], key: str, where: Where, name: str) -> Any:
    if key not in obj:
        raise where.error(f"missing `{key}`", name, hint=EXPORT_HINT)
    return obj[key]


def _region(
    region: Any, where: Where, name: str, classes: list[str], size: tuple[int, int]
) -> tuple[int, float, float, float, float]:
    if not isinstance(region, dict):
        raise where.error("a result entry must be an object", name, hint=EXPORT_HINT)
    kind = _field(region, "type", where, f"{name}.type")
    if kind != REGION:
        raise where.error(
            f"region type {kind!r} is not a rectangle",
            f"{name}.type",
            hint=f"label with the RectangleLabels config `vigil queue rank` wrote ({REGION} only)",
        )
    width, height = size
    for key, expected in (("original_width", width), ("original_height", height)):
        value = number(_field(region, key, where, f"{name}.{key}"), where, f"{name}.{key}")
        if value != expected:
            raise where.error(
                f"{key} {value:g} is not the image's {expected}",
                f"{name}.{key}",
                hint="the labelled image is not the dataset's: queue it again with `vigil queue rank`",
            )
    value = _field(region, "value", where, f"{name}.value")
    if not isinstance(value, dict):
        raise where.error("`value` must be an object", f"{name}.value", hint=EXPORT_HINT)
    labels = _field(value, REGION, where, f"{name}.value.{REGION}")
    if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str)):
        raise where.error(
            f"{labels!r} is not one class name",
            f"{name}.value.{REGION}",
            hint="give every box exactly one label",
        )
    if labels[0] not in classes:
        raise where.error(
            f"unknown label {labels[0]!r}",
            f"{name}.value.{REGION}",
            hint=f"the dataset's classes are {', '.join(classes)} (classes.txt); relabel the box",
        )
    rotation = number(value.get("rotation", 0), where, f"{name}.value.rotation")
    if rotation % 360:
        raise where.error(
            f"the box is rotated by {rotation:g}°",
            f"{name}.value.rotation",
            hint="draw axis-aligned boxes (YOLO labels cannot rotate)",
        )
    px = [
        number(_field(value, key, where, f"{name}.value.{key}"), where, f"{name}.value.{key}")
        * side
        / 100.0
        for key, side in (("x", width), ("y", height), ("width", width), ("height", height))
    ]
    x, y, w, h = check_box(px[0], px[1], px[2], px[3], width, height, where, f"{name}.value")
    return classes.index(labels[0]), x, y, w, h


def _annotation(task_obj: dict[str, Any], where: Where) -> tuple[int, Any] | None:
    """(index, annotation) of the task's last annotation that was not cancelled; None: not labelled."""
    annotations = task_obj.get("annotations", [])
    if not isinstance(annotations, list):
        raise where.error("`annotations` must be a list", "annotations", hint=EXPORT_HINT)
    for i in range(len(annotations) - 1, -1, -1):
        ann = annotations[i]
        if not isinstance(ann, dict):
            raise where.error(
                "an annotation must be an object", f"annotations[{i}]", hint=EXPORT_HINT
            )
        if not ann.get("was_cancelled", False):
            return i, ann
    return None


def read_export(
    doc: Any, path: Path, classes: list[str], pool: dict[str, tuple[int, int]]
) -> tuple[list[HumanLabels], list[str]]:
    """The finished tasks of a Label Studio JSON export (`doc`, read from `path`), checked whole.

    `pool` maps each unlabelled dataset image to its (width, height). Returns the labels and the
    tasks left unlabelled (their ids). A task naming an image outside the pool, twice the same image,
    an unknown label or a box outside its image is an error naming the task and the field.
    """
    if not isinstance(doc, list):
        raise VigilError(
            f"expected a list of tasks, got {type(doc).__name__}", path=path, hint=EXPORT_HINT
        )
    labels: list[HumanLabels] = []
    unlabelled: list[str] = []
    seen: dict[str, str] = {}
    for n, task_obj in enumerate(doc):
        if not isinstance(task_obj, dict):
            raise Where(path, item=f"task [{n}]").error(
                "a task must be an object", hint=EXPORT_HINT
            )
        task_id = str(task_obj.get("id", f"[{n}]"))
        where = Where(path, item=f"task id={task_id}")
        data = _field(task_obj, "data", where, "data")
        image = data.get(IMAGE_KEY) if isinstance(data, dict) else None
        if not isinstance(image, str):
            raise where.error(
                f"no `{IMAGE_KEY}`: not a task `vigil queue rank` wrote",
                f"data.{IMAGE_KEY}",
                hint="import the queue's tasks.json into Label Studio and export that project",
            )
        if image not in pool:
            raise where.error(
                f"{image!r} is not an unlabelled image of this dataset",
                f"data.{IMAGE_KEY}",
                hint="accept into the dataset the queue was ranked from (--data), once per image",
            )
        if image in seen:
            raise where.error(
                f"{image!r} is also task id={seen[image]}",
                f"data.{IMAGE_KEY}",
                hint="export each image once (delete the duplicate task)",
            )
        seen[image] = task_id
        picked = _annotation(task_obj, where)
        if picked is None:
            unlabelled.append(task_id)
            continue
        i, ann = picked
        result = _field(ann, "result", where, f"annotations[{i}].result")
        if not isinstance(result, list):
            raise where.error("must be a list", f"annotations[{i}].result", hint=EXPORT_HINT)
        boxes = [
            _region(r, where, f"annotations[{i}].result[{j}]", classes, pool[image])
            for j, r in enumerate(result)
        ]
        labels.append(HumanLabels(image, task_id, boxes))
    return labels, unlabelled
