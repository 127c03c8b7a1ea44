"""Per image: which detections are true / false positives and which true boxes were missed.

The rule is `vigil.metrics.matching.match_image`'s (greedy by score, same class, the highest-IoU
free true box, IoU >= the threshold); this module also keeps which true box each detection took,
so the boxes nobody took are the misses. `worst` ranks images for the error gallery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vigil.detection.boxes import box_iou
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.matching import drop_ignored

KINDS: tuple[str, ...] = ("missed", "false")  # the gallery's two rankings


@dataclass(frozen=True)
class ImageErrors:
    """One image at one confidence: its detections (above it), which are correct, which truths were found."""

    truth: ImageTruth
    detections: ImageDetections
    correct: np.ndarray  # bool per detection
    found: np.ndarray  # bool per true box

    @property
    def tp(self) -> int:
        return int(self.correct.sum())

    @property
    def fp(self) -> int:
        return int((~self.correct).sum())

    @property
    def missed(self) -> int:
        return int((~self.found).sum())

    def counts(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "missed": self.missed}


def image_errors(
    truth: ImageTruth, dets: ImageDetections, *, conf: float, iou: float
) -> ImageErrors:
    """Match the detections with a score >= `conf` against `truth` at IoU `iou` (those in an ignore
    region that match no true box are left out)."""
    kept = drop_ignored(truth, dets.above(conf), iou)
    correct = np.zeros(len(kept.scores), dtype=bool)
    found = np.zeros(len(truth.classes), dtype=bool)
    if len(kept.scores) and len(truth.classes):
        overlaps = box_iou(kept.boxes, truth.boxes)
        for i in np.argsort(-kept.scores, kind="stable"):
            candidates = (truth.classes == kept.classes[i]) & ~found
            if not candidates.any():
                continue
            row = np.where(candidates, overlaps[i], -1.0)
            best = int(np.argmax(row))
            if row[best] >= iou:
                found[best] = True
                correct[i] = True
    return ImageErrors(truth, kept, correct, found)


def worst(errors: Sequence[ImageErrors], kind: str, count: int) -> list[ImageErrors]:
    """The `count` images with the most missed (`kind` "missed") or false ("false") boxes.

    Images with none of that kind are left out; ties go to more errors of the other kind, then the
    image path, so the same errors always pick the same images.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

    def key(e: ImageErrors) -> tuple[int, int, str]:
        main, other = (e.missed, e.fp) if kind == "missed" else (e.fp, e.missed)
        return (-main, -other, e.truth.image)

    ranked = sorted((e for e in errors if (e.missed if kind == "missed" else e.fp) > 0), key=key)
    return ranked[:count]
