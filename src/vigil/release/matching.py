"""Detections → correct / incorrect: greedy by score, one ground-truth box per detection, same class.

A detection is correct when it overlaps a not-yet-taken ground-truth box of its class at IoU >= the
threshold (the highest-IoU such box is taken), visiting detections from the highest score down — the
same rule COCO and ultralytics use for true positives. The result also carries each box's centre and
size normalized by the image size: the extra dimensions of the detection ECE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.release.detections import ImageDetections, ImageTruth

BOX_DIMS: tuple[str, ...] = ("cx", "cy", "w", "h")


@dataclass(frozen=True)
class MatchedDetections:
    """Flat arrays over every detection of a split: score, class, correct, and cx, cy, w, h in [0, 1]."""

    scores: np.ndarray
    classes: np.ndarray
    correct: np.ndarray
    boxes: np.ndarray          # (n, 4) normalized cx, cy, w, h

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, mask: np.ndarray) -> MatchedDetections:
        return MatchedDetections(self.scores[mask], self.classes[mask], self.correct[mask], self.boxes[mask])

    def with_scores(self, scores: np.ndarray) -> MatchedDetections:
        """The same detections with other confidences (e.g. calibrated ones)."""
        return MatchedDetections(np.asarray(scores, dtype=np.float64), self.classes, self.correct, self.boxes)

    def features(self, dims: list[str]) -> np.ndarray:
        """(n, len(dims)) columns named `confidence`, `cx`, `cy`, `w`, `h`."""
        cols = [self.scores if d == "confidence" else self.boxes[:, BOX_DIMS.index(d)] for d in dims]
        return np.stack(cols, axis=1) if cols else np.zeros((len(self), 0))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) × (m, 4) xyxy → (n, m) IoU; zero-area boxes have IoU 0 with everything."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_image(dets: ImageDetections, truth: ImageTruth, iou: float) -> np.ndarray:
    """Correct (bool) per detection, in the detections' order."""
    correct = np.zeros(len(dets.scores), dtype=bool)
    if not len(dets.scores) or not len(truth.classes):
        return correct
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
            correct[i] = True
    return correct


def normalized_boxes(dets: ImageDetections) -> np.ndarray:
    """xyxy pixels → cx, cy, w, h as fractions of the image, clipped to [0, 1]."""
    b = dets.boxes
    out = np.stack([(b[:, 0] + b[:, 2]) / 2 / dets.width, (b[:, 1] + b[:, 3]) / 2 / dets.height,
                    (b[:, 2] - b[:, 0]) / dets.width, (b[:, 3] - b[:, 1]) / dets.height], axis=1)
    return np.clip(out, 0.0, 1.0).reshape(-1, 4)


def match_detections(images: list[ImageDetections], truths: list[ImageTruth], iou: float) -> MatchedDetections:
    """Match every image and flatten; `truths[i]` belongs to `images[i]`."""
    correct = [match_image(d, t, iou) for d, t in zip(images, truths, strict=True)]
    if not images:
        return MatchedDetections(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros((0, 4)))
    return MatchedDetections(np.concatenate([d.scores for d in images]).astype(np.float64),
                             np.concatenate([d.classes for d in images]).astype(np.int64),
                             np.concatenate(correct),
                             np.concatenate([normalized_boxes(d) for d in images]).reshape(-1, 4))
