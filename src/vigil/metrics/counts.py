"""Count error: how far a detector's per-class object counts are from the truth, image by image.

A deployed detector is often read as a counter ("three bags in view"); mAP does not say how good a
counter it is. At the deployed confidence `conf`, each image and class gives |detected - true|;
the mean over all (image, class) pairs is the count MAE, and the mean over images per class says
which class is miscounted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.matching import drop_ignored


@dataclass(frozen=True)
class CountError:
    mae: float | None  # mean |detected - true| over every (image, class); None for no images
    per_class: list[float | None]  # the same per class, over images
    total_mae: float | None  # mean |detected - true| of the all-class count per image


def count_matrix(classes: Sequence[np.ndarray], n_classes: int) -> np.ndarray:
    """[images, classes] counts of class ids (ids outside 0..n_classes-1 are not counted)."""
    out = np.zeros((len(classes), n_classes), dtype=np.int64)
    for i, ids in enumerate(classes):
        ids = ids[(ids >= 0) & (ids < n_classes)]
        out[i] = np.bincount(ids, minlength=n_classes)
    return out


def count_error(
    truths: Sequence[ImageTruth],
    detections: Sequence[ImageDetections],
    n_classes: int,
    conf: float,
    iou: float = 0.5,
) -> CountError:
    """Count MAE of the detections scoring at least `conf` against the true boxes; a detection in an
    ignore region (matching no true box at `iou`) is not counted."""
    if len(truths) != len(detections):
        raise ValueError(f"{len(truths)} images but {len(detections)} detection lists")
    if not truths:
        return CountError(None, [None] * n_classes, None)
    true = count_matrix([t.classes for t in truths], n_classes)
    found = count_matrix(
        [
            drop_ignored(t, d.above(conf), iou).classes
            for t, d in zip(truths, detections, strict=True)
        ],
        n_classes,
    )
    diff = np.abs(found - true)
    return CountError(
        float(diff.mean()),
        [float(v) for v in diff.mean(axis=0)],
        float(np.abs(found.sum(axis=1) - true.sum(axis=1)).mean()),
    )
