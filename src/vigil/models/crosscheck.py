"""ultralytics' own mAP beside ours, split into the two places a difference can come from.

- `ultralytics_val`: `model.val()` on the same images — ultralytics' whole pipeline (its
  dataloader with rect letterbox batches, multi-label NMS, its matching and its AP formula).
- `ultralytics_ap`: ultralytics' matching (`match_predictions`) and AP formula (`ap_per_class`,
  a trapezoid over a 101-point interpolated envelope) applied to *our* detections.

ours vs `ultralytics_ap` isolates the metric code (COCO samples the precision envelope at 101
recall points and averages; ultralytics integrates it); `ultralytics_ap` vs `ultralytics_val`
isolates the detections (val keeps a box once per class above `conf` — multi-label NMS — where
`predict`, like a deployed detector, keeps one class per box; and it pads rect batches differently).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vigil.detection.boxes import box_iou
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.models.dataset import build_view
from vigil.models.inference import Inference, load_yolo


def ultralytics_ap(truths: Sequence[ImageTruth], detections: Sequence[ImageDetections]) -> dict[str, float]:
    """mAP50 and mAP50-95 of our detections by ultralytics' own matching and AP code."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class

    validator = DetectionValidator.__new__(DetectionValidator)  # __init__ would make a run folder under runs/
    validator.iouv = torch.linspace(0.5, 0.95, 10)  # type: ignore[assignment]  # all match_predictions reads
    tps, scores, pred_cls, true_cls = [], [], [], []
    for truth, dets in zip(truths, detections, strict=True):
        order = np.argsort(-dets.scores, kind="stable")  # match_predictions expects descending confidence
        boxes, conf, cls = dets.boxes[order], dets.scores[order], dets.classes[order]
        tp = np.zeros((len(cls), 10), dtype=bool)
        if len(cls) and len(truth.classes):
            tp = validator.match_predictions(torch.from_numpy(cls), torch.from_numpy(truth.classes),
                                             torch.from_numpy(box_iou(truth.boxes, boxes))).numpy()
        tps.append(tp)
        scores.append(conf)
        pred_cls.append(cls)
        true_cls.append(truth.classes)
    if not sum(len(c) for c in true_cls):
        return {"map50": None, "map50_95": None}  # type: ignore[dict-item]
    ap = ap_per_class(np.concatenate(tps), np.concatenate(scores), np.concatenate(pred_cls), np.concatenate(true_cls))[5]
    if not len(ap):  # no detection at all
        return {"map50": 0.0, "map50_95": 0.0}
    return {"map50": round(float(ap[:, 0].mean()), 6), "map50_95": round(float(ap.mean()), 6)}


@contextmanager
def quiet_ultralytics() -> Iterator[None]:
    """ultralytics logs val's banner, scan and table to stdout, and its bars stop below INFO: warnings only."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def ultralytics_val(checkpoint: Path, data_root: Path, images: Sequence[str], work_dir: Path, settings: Inference,
                    *, batch: int) -> dict[str, Any]:
    """ultralytics' `model.val()` on `images` (a view of the dataset in `work_dir`); its mAP50 and mAP50-95."""
    # ultralytics needs `train:` and `val:` keys; all point at the evaluated images
    data_yaml = build_view(data_root, {"train": images, "val": images, "test": images}, Path(work_dir) / "view")
    model = load_yolo(checkpoint)
    kwargs = settings.kwargs()
    kwargs.pop("verbose")
    try:
        with quiet_ultralytics():
            metrics = model.val(data=str(data_yaml), split="test", batch=batch, workers=0, plots=False,
                                save_json=False, verbose=False, project=str(Path(work_dir).resolve() / "runs"),
                                name="val", exist_ok=True, **kwargs)
    except Exception as exc:
        raise VigilError(f"ultralytics val failed: {exc}", path=checkpoint) from None
    return {"map50": round(float(metrics.box.map50), 6), "map50_95": round(float(metrics.box.map), 6),
            "conf": settings.conf, "iou": settings.iou, "max_det": settings.max_det, "batch": batch}
