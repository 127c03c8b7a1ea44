"""mAP per distance bin (the bins and the per-object distances: vigil.data.distance)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vigil.data.distance import DistanceParams, object_distances
from vigil.detection.boxes import box_iou
from vigil.detection.types import ImageDetections, ImageTruth

ATTRIBUTION_IOU = 0.5  # a detection this close to a true box is judged in that box's bin
NO_OBJECT = -2  # a detection near no true box: judged in every bin


def ap_by_distance(
    truths: Sequence[ImageTruth],
    detections: Sequence[ImageDetections],
    class_names: Sequence[str],
    params: DistanceParams,
    *,
    max_det: int,
) -> dict[str, dict[str, Any]]:
    """mAP per distance bin, by COCO's own rule for object sizes: a true box outside the bin is
    ignored (a detection matching it is neither right nor wrong), and so is a leftover detection
    whose best-overlapping true box (IoU >= 0.5, any class) lies outside the bin; a detection near
    no true box is a false positive in every bin. COCOeval does the scoring: each bin is one run
    with the bin written into the `area` it filters on."""
    from vigil.metrics.coco import (
        IOU50,
        as_coco,
        coco_detections,
        coco_ground_truth,
        detections_coco,
        rounded,
        run_cocoeval,
    )

    bins = [params.bin_index(object_distances(t.record, params, len(t.classes))) for t in truths]
    flat = np.concatenate(bins) if bins else np.zeros(0, dtype=np.int64)
    det_bins: list[int] = []
    for truth, dets, b in zip(truths, detections, bins, strict=True):
        if not len(dets.scores):
            continue
        if not len(truth.classes):
            det_bins += [NO_OBJECT] * len(dets.scores)
            continue
        overlaps = box_iou(dets.boxes, truth.boxes)
        best = overlaps.argmax(axis=1)
        near = overlaps.max(axis=1) >= ATTRIBUTION_IOU
        det_bins += np.where(near, b[best], NO_OBJECT).tolist()
    ground = coco_ground_truth(truths, class_names)
    results = coco_detections(detections)
    out: dict[str, dict[str, Any]] = {}
    for k, label in enumerate(params.labels()):
        objects = iter(flat)
        gt = dict(ground)
        gt["annotations"] = [
            {**a, "area": 1.0 if a["iscrowd"] or next(objects) == k else 0.0}
            for a in ground["annotations"]
        ]
        dt = [
            {**r, "area": 1.0 if det_bins[i] in (k, NO_OBJECT) else 0.0}
            for i, r in enumerate(results)
        ]
        gt_coco = as_coco(gt)
        scores = run_cocoeval(
            gt_coco, detections_coco(gt_coco, dt), areas={label: (0.5, 1.5)}, max_det=max_det
        )
        out[label] = {
            "map50_95": rounded(scores.ap(area=label)),
            "map50": rounded(scores.ap(iou=IOU50, area=label)),
            "recall50": rounded(scores.ar(iou=IOU50, area=label)),
            "boxes": int(np.count_nonzero(flat == k)),
            "images": sum(bool(np.any(b == k)) for b in bins),
        }
    return out
