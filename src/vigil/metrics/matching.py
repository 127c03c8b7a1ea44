"""Detections → correct / incorrect: greedy by score, one true box per detection, same class.

A detection is correct when it overlaps a not-yet-taken true box of its class at IoU >= the
threshold (the highest-IoU such box is taken), visiting detections from the highest score down —
the same rule COCO and ultralytics use for true positives. The flattened result also carries each
box's centre and size normalized by the image size: the extra dimensions of the detection ECE.
Used by `calibrate` (reliability of the scores), `distill` (precision of the pseudo-labels) and
`range` (a detection takes the distance of the true box it matched).

A detection that matches no true box but lies in one of the image's ignore regions (VisDrone's
ignored regions, COCO crowds: its intersection over its own area reaches the IoU threshold, COCO's
crowd rule) is neither correct nor wrong: `drop_ignored` removes it before anything is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vigil.detection.boxes import box_ioa, box_iou, xyxy_to_yolo
from vigil.detection.types import ANY_CLASS, ImageDetections, ImageTruth

BOX_DIMS: tuple[str, ...] = ("cx", "cy", "w", "h")


@dataclass(frozen=True)
class MatchedDetections:
    """Flat arrays over every detection of a split: score, class, correct, and cx, cy, w, h in [0, 1]."""

    scores: np.ndarray
    classes: np.ndarray
    correct: np.ndarray
    boxes: np.ndarray  # (n, 4) normalized cx, cy, w, h

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, mask: np.ndarray) -> MatchedDetections:
        return MatchedDetections(
            self.scores[mask], self.classes[mask], self.correct[mask], self.boxes[mask]
        )

    def with_scores(self, scores: np.ndarray) -> MatchedDetections:
        """The same detections with other confidences (e.g. calibrated ones)."""
        return MatchedDetections(
            np.asarray(scores, dtype=np.float64), self.classes, self.correct, self.boxes
        )

    def features(self, dims: list[str]) -> np.ndarray:
        """(n, len(dims)) columns named `confidence`, `cx`, `cy`, `w`, `h`."""
        cols = [
            self.scores if d == "confidence" else self.boxes[:, BOX_DIMS.index(d)] for d in dims
        ]
        return np.stack(cols, axis=1) if cols else np.zeros((len(self), 0))


def assign_truth(truth: ImageTruth, dets: ImageDetections, iou: float) -> np.ndarray:
    """The index of the true box each detection matched (-1: none), in the detections' order."""
    assigned = np.full(len(dets.scores), -1, dtype=np.int64)
    if not len(dets.scores) or not len(truth.classes):
        return assigned
    overlaps = box_iou(dets.boxes, truth.boxes)
    taken = np.zeros(len(truth.classes), dtype=bool)
    for i in np.argsort(-dets.scores, kind="stable"):
        candidates = (truth.classes == dets.classes[i]) & ~taken
        if not candidates.any():
            continue
        row = np.where(candidates, overlaps[i], -1.0)
        best = int(np.argmax(row))
        if row[best] >= iou:
            taken[best] = True
            assigned[i] = best
    return assigned


def match_image(truth: ImageTruth, dets: ImageDetections, iou: float) -> np.ndarray:
    """Correct (bool) per detection, in the detections' order."""
    return assign_truth(truth, dets, iou) >= 0


def drop_ignored(truth: ImageTruth, dets: ImageDetections, iou: float) -> ImageDetections:
    """`dets` without the ones that match no true box and lie in an ignore region of their class
    (or of every class) by at least `iou` of their area."""
    if not len(truth.ignore) or not len(dets.scores):
        return dets
    correct = match_image(truth, dets, iou)
    applies = (truth.ignore_classes[None, :] == ANY_CLASS) | (
        truth.ignore_classes[None, :] == dets.classes[:, None]
    )
    inside = ((box_ioa(dets.boxes, truth.ignore) >= iou) & applies).any(axis=1)
    keep = correct | ~inside
    return ImageDetections(dets.boxes[keep], dets.scores[keep], dets.classes[keep])


def normalized_boxes(truth: ImageTruth, dets: ImageDetections) -> np.ndarray:
    """The detections' boxes as cx, cy, w, h fractions of the truth's image, clipped to [0, 1]."""
    return np.clip(xyxy_to_yolo(dets.boxes, truth.width, truth.height), 0.0, 1.0)


def match_detections(
    truths: Sequence[ImageTruth], detections: Sequence[ImageDetections], iou: float
) -> MatchedDetections:
    """Match every image and flatten; `truths[i]` and `detections[i]` are the same image.

    Detections in an ignore region (and matching no true box) are left out."""
    detections = [drop_ignored(t, d, iou) for t, d in zip(truths, detections, strict=True)]
    correct = [match_image(t, d, iou) for t, d in zip(truths, detections, strict=True)]
    if not detections:
        return MatchedDetections(
            np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros((0, 4))
        )
    return MatchedDetections(
        np.concatenate([d.scores for d in detections]).astype(np.float64),
        np.concatenate([d.classes for d in detections]).astype(np.int64),
        np.concatenate(correct),
        np.concatenate(
            [normalized_boxes(t, d) for t, d in zip(truths, detections, strict=True)]
        ).reshape(-1, 4),
    )
