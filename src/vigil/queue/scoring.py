"""What a person should label first: one score per pool image, higher = sooner. Pure numpy.

- `low_confidence`: the image's most uncertain detection. A calibrated score is the probability
  that the box is right, so 0.5 is a coin flip: uncertainty 1 − 2|p − 0.5|. A raw score is no
  probability; there the centre is the deployed threshold t, the score at which the detector
  flips between keeping and dropping the box: 1 − |s − t| / max(t, 1 − t). An image without a
  detection scores 0 (nothing to doubt; the random baseline covers the silent misses).
- `disagreement`: 1 − the agreement of the teacher's and the student's deployed boxes, where
  agreement is 2·matched / (teacher boxes + student boxes) (matched: same class, IoU ≥ the
  queue's, greedy by score as every match in vigil). Two empty answers agree.
- `random`: a seeded uniform score per image (the baseline active learning must beat).

`rank` orders images by score, ties by image path, so a ranking is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.matching import assign_truth


def uncertainty(scores: np.ndarray, centre: float) -> np.ndarray:
    """Per detection, 1 at `centre` falling linearly to 0 at the farther end of [0, 1]."""
    scores = np.asarray(scores, dtype=np.float64)
    span = max(centre, 1.0 - centre)
    return np.clip(1.0 - np.abs(scores - centre) / span, 0.0, 1.0)


def low_confidence_score(scores: np.ndarray, centre: float) -> float:
    """The image's most uncertain detection (0 when it has none)."""
    values = uncertainty(scores, centre)
    return float(values.max()) if values.size else 0.0


def agreement(teacher: ImageDetections, student: ImageDetections, iou: float) -> float:
    """2·matched / (teacher + student boxes): 1 when every box has its twin, 0 when none has."""
    total = len(teacher.scores) + len(student.scores)
    if total == 0:
        return 1.0
    as_truth = ImageTruth("", 1, 1, teacher.boxes, teacher.classes)
    matched = int((assign_truth(as_truth, student, iou) >= 0).sum())
    return 2.0 * matched / total


def disagreement_score(teacher: ImageDetections, student: ImageDetections, iou: float) -> float:
    """1 − agreement: how far the two models' deployed answers for the image differ."""
    return 1.0 - agreement(teacher, student, iou)


def random_scores(images: Sequence[str], seed: int) -> list[float]:
    """A uniform score per image from `seed` (the same pool and seed give the same ranking)."""
    return [float(v) for v in np.random.default_rng(seed).random(len(images))]


def rank(images: Sequence[str], scores: Sequence[float]) -> list[int]:
    """Indices of `images` from the highest score down; equal scores in path order."""
    if len(images) != len(scores):
        raise ValueError("one score per image")
    return sorted(range(len(images)), key=lambda i: (-scores[i], images[i]))
