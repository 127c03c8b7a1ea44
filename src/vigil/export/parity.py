"""How far an engine's detections are from PyTorch's on the same images: match, then max abs differences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vigil.detection.boxes import box_iou
from vigil.detection.types import ImageDetections


def compare(
    reference: Sequence[ImageDetections], other: Sequence[ImageDetections], *, iou: float
) -> dict[str, Any]:
    """Greedy same-class matching by IoU (highest reference score first); max |Δ| of matched boxes (px) and scores."""
    box_diff, score_diff, matched, unmatched_ref, unmatched_other = 0.0, 0.0, 0, 0, 0
    for ref, oth in zip(reference, other, strict=True):
        taken = np.zeros(len(oth.scores), dtype=bool)
        overlaps = box_iou(ref.boxes, oth.boxes)
        for i in np.argsort(-ref.scores):
            candidates = np.where(~taken & (oth.classes == ref.classes[i]) & (overlaps[i] >= iou))[
                0
            ]
            if not len(candidates):
                unmatched_ref += 1
                continue
            j = candidates[np.argmax(overlaps[i, candidates])]
            taken[j] = True
            matched += 1
            box_diff = max(box_diff, float(np.abs(ref.boxes[i] - oth.boxes[j]).max()))
            score_diff = max(score_diff, float(abs(ref.scores[i] - oth.scores[j])))
        unmatched_other += int((~taken).sum())
    return {
        "matched": matched,
        "unmatched_reference": unmatched_ref,
        "unmatched_other": unmatched_other,
        "max_abs_box_px": round(box_diff, 4),
        "max_abs_score": round(score_diff, 6),
    }
