"""COCO detection metrics with pycocotools' COCOeval (AP is never re-implemented here).

Ground truth and detections are turned into COCO dicts and scored by `COCOeval`; the summary
numbers are read from its accumulated `eval['precision']` / `eval['recall']` arrays rather than
from `summarize()` (which prints, and only knows the labels all/small/medium/large).

What pycocotools gets wrong or leaves to the caller, handled here:
- `COCO.loadRes([])` crashes on an empty detection list (it reads `anns[0]`): the detection COCO is
  built directly, so no detections at all is a valid input (every AP is then 0).
- A match is stored as the partner's annotation id and read back by truthiness, so an id of 0
  would count as unmatched: annotation and image ids start at 1.
- A class, size range or image subset with no true box gets precision -1; the means skip those
  entries (COCO's rule) and a per-class / per-size / per-stratum value with no true box is reported
  as None (null in JSON), never -1.
- `accumulate(p)` with a subset of images indexes its results by the position in the subset, not
  in the evaluated list (wrong numbers): a stratum is scored by re-running `evaluate()` with
  `params.imgIds` set to its images.
- It prints progress to stdout: silenced, so a stage's stdout stays its own.
- Ignore regions (the manifest's `ignore`: VisDrone's ignored regions, COCO crowds) go in as
  `iscrowd: 1` annotations, one per class they hold for: COCOeval then matches a leftover detection
  to one by intersection over the detection's area and counts it as neither TP nor FP, and a crowd
  is never a box to find.
- `maxDets` is fixed at (1, 10, 100) unless told: the last entry follows `evaluate.max_det`, so an
  image with 150 objects is scored whole.
- Precision is `tp / (tp + fp + eps)`, so a perfect result is 1 - 2e-16: values are rounded to
  `DIGITS` decimals.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vigil.detection.boxes import box_area
from vigil.detection.types import ANY_CLASS, ImageDetections, ImageTruth

DIGITS = 6
OPEN_END = 1e5**2  # COCO's "no upper bound" area
AREA_ALL = "all"
COCO_SIZES: dict[str, tuple[float, float]] = {
    "coco_small": (0.0, 32.0**2),
    "coco_medium": (32.0**2, 96.0**2),
    "coco_large": (96.0**2, OPEN_END),
}
MAX_DETS = (1, 10, 100)  # COCO's; `recall` is AR@<last>
IOU50 = 0  # index of IoU .50 in COCO's thresholds .50:.05:.95


def rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_ground_truth(truths: Sequence[ImageTruth], class_names: Sequence[str]) -> dict[str, Any]:
    """COCO ground truth: image i of `truths` gets id i+1, class c gets category id c+1."""
    images = [
        {"id": i + 1, "file_name": t.image, "width": t.width, "height": t.height}
        for i, t in enumerate(truths)
    ]
    annotations: list[dict[str, Any]] = []
    for i, truth in enumerate(truths):
        areas = box_area(truth.boxes)
        for box, cls, area in zip(truth.boxes, truth.classes, areas, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(cls) + 1,
                    "bbox": _xywh(box),
                    "area": float(area),
                    "iscrowd": 0,
                }
            )
        for region, cls in zip(truth.ignore, truth.ignore_classes, strict=True):
            for k in range(len(class_names)) if cls == ANY_CLASS else [int(cls)]:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": k + 1,
                        "bbox": _xywh(region),
                        "area": float(box_area(region)[0]),
                        "iscrowd": 1,
                    }
                )
    categories = [{"id": c + 1, "name": name} for c, name in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_detections(detections: Sequence[ImageDetections]) -> list[dict[str, Any]]:
    """COCO results for the same image order as the ground truth (image i → id i+1)."""
    results: list[dict[str, Any]] = []
    for i, dets in enumerate(detections):
        for box, score, cls, area in zip(
            dets.boxes, dets.scores, dets.classes, box_area(dets.boxes), strict=True
        ):
            results.append(
                {
                    "id": len(results) + 1,
                    "image_id": i + 1,
                    "category_id": int(cls) + 1,
                    "bbox": _xywh(box),
                    "score": float(score),
                    "area": float(area),
                    "iscrowd": 0,
                }
            )
    return results


def as_coco(dataset: Mapping[str, Any]) -> COCO:
    """A pycocotools COCO over an in-memory dict, quietly (it prints while indexing)."""
    coco = COCO()
    coco.dataset = dict(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def detections_coco(gt: COCO, results: list[dict[str, Any]]) -> COCO:
    """The detection side, built directly (loadRes fails on an empty list)."""
    return as_coco(
        {
            "images": gt.dataset["images"],
            "categories": gt.dataset["categories"],
            "annotations": results,
        }
    )


@dataclass(frozen=True)
class CocoScores:
    """COCOeval's accumulated arrays and the labels of their axes."""

    precision: np.ndarray  # [T iou, R recall, K class, A area, M maxdets]; -1 = no true box
    recall: np.ndarray  # [T, K, A, M]
    areas: tuple[str, ...]  # labels of axis A
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray

    def area_index(self, area: str) -> int:
        return self.areas.index(area)

    def ap(
        self, *, iou: int | None = None, cls: int | None = None, area: str = AREA_ALL
    ) -> float | None:
        """Mean precision over the valid entries (COCO's mAP); None when no true box is in range."""
        p = self.precision[:, :, :, self.area_index(area), -1]
        p = p if iou is None else p[iou : iou + 1]
        p = p if cls is None else p[:, :, cls : cls + 1]
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else None

    def ar(
        self, *, iou: int | None = None, cls: int | None = None, area: str = AREA_ALL
    ) -> float | None:
        """Mean recall at the last maxDets (AR@100) over the valid entries; None when no true box is in range."""
        r = self.recall[:, :, self.area_index(area), -1]
        r = r if iou is None else r[iou : iou + 1]
        r = r if cls is None else r[:, cls : cls + 1]
        valid = r[r > -1]
        return float(valid.mean()) if valid.size else None


def run_cocoeval(
    gt: COCO,
    dt: COCO,
    *,
    image_ids: Sequence[int] | None = None,
    areas: Mapping[str, tuple[float, float]] | None = None,
    max_det: int = MAX_DETS[-1],
) -> CocoScores:
    """COCOeval (bbox) over `image_ids` (default all) with the area ranges `areas` after COCO's `all`,
    scoring up to `max_det` detections per image."""
    areas = dict(areas or {})
    areas.pop(AREA_ALL, None)
    evaluator = COCOeval(gt, dt, iouType="bbox")
    evaluator.params.maxDets = sorted({*MAX_DETS[:-1], int(max_det)})
    evaluator.params.areaRng = [[0.0, OPEN_END]] + [
        [float(lo), float(hi)] for lo, hi in areas.values()
    ]
    evaluator.params.areaRngLbl = [AREA_ALL, *areas]
    if image_ids is not None:
        evaluator.params.imgIds = sorted(int(i) for i in image_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    p = evaluator.params
    return CocoScores(
        evaluator.eval["precision"],
        evaluator.eval["recall"],
        tuple(p.areaRngLbl),
        np.asarray(p.iouThrs),
        np.asarray(p.recThrs),
    )


def _in_range(areas: np.ndarray, lo: float, hi: float) -> int:
    return int(np.count_nonzero((areas >= lo) & (areas <= hi)))  # COCOeval's bounds are inclusive


@dataclass(frozen=True)
class CocoReport:
    metrics: dict[
        str, Any
    ]  # map50_95, map50, recall, recall50, per_class, per_size, per_stratum, per_group
    pr50: (
        np.ndarray
    )  # [K, R] precision at IoU .50 over COCO's 101 recall thresholds (-1: no true box)
    recall_thresholds: np.ndarray


def stratum_values(truths: Sequence[ImageTruth], key: str) -> dict[str, list[int]]:
    """Value of manifest field `key` → the COCO image ids (1-based) that carry it, in first-seen order."""
    values: dict[str, list[int]] = {}
    for i, truth in enumerate(truths):
        value = truth.record.get(key)
        values.setdefault("(missing)" if value is None else str(value), []).append(i + 1)
    return values


def evaluate_coco(
    truths: Sequence[ImageTruth],
    detections: Sequence[ImageDetections],
    class_names: Sequence[str],
    *,
    size_buckets: Mapping[str, tuple[float, float]] | None = None,
    strata: Sequence[str] = (),
    groups: Sequence[str] = (),
    max_det: int = MAX_DETS[-1],
) -> CocoReport:
    """Every COCO number of one model on one image list (`detections[i]` belongs to `truths[i]`)."""
    if len(truths) != len(detections):
        raise ValueError(f"{len(truths)} images but {len(detections)} detection lists")
    gt = as_coco(coco_ground_truth(truths, class_names))
    dt = detections_coco(gt, coco_detections(detections))
    sizes = {**COCO_SIZES, **(size_buckets or {})}
    scores = run_cocoeval(gt, dt, areas=sizes, max_det=max_det)
    gt_areas = np.concatenate([box_area(t.boxes) for t in truths]) if truths else np.zeros(0)
    gt_classes = (
        np.concatenate([t.classes for t in truths]) if truths else np.zeros(0, dtype=np.int64)
    )

    per_class = {
        name: {
            "ap50_95": rounded(scores.ap(cls=k)),
            "ap50": rounded(scores.ap(iou=IOU50, cls=k)),
            "boxes": int(np.count_nonzero(gt_classes == k)),
        }
        for k, name in enumerate(class_names)
    }
    per_size = {
        name: {
            "map50_95": rounded(scores.ap(area=name)),
            "map50": rounded(scores.ap(iou=IOU50, area=name)),
            "boxes": _in_range(gt_areas, lo, hi),
        }
        for name, (lo, hi) in sizes.items()
    }

    def by_field(keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key in keys:
            out[key] = {}
            for value, ids in stratum_values(truths, key).items():
                sub = run_cocoeval(gt, dt, image_ids=ids, max_det=max_det)
                out[key][value] = {
                    "map50_95": rounded(sub.ap()),
                    "map50": rounded(sub.ap(iou=IOU50)),
                    "images": len(ids),
                    "boxes": int(sum(len(truths[i - 1].classes) for i in ids)),
                }
        return out

    metrics = {
        "map50_95": rounded(scores.ap()),
        "map50": rounded(scores.ap(iou=IOU50)),
        "recall": rounded(scores.ar()),
        "recall50": rounded(scores.ar(iou=IOU50)),
        "images": len(truths),
        "boxes": int(len(gt_classes)),
        "per_class": per_class,
        "per_size": per_size,
        "per_stratum": by_field(strata),
        "per_group": by_field(groups),
    }
    return CocoReport(
        metrics, scores.precision[IOU50, :, :, 0, -1].T.copy(), scores.recall_thresholds
    )
