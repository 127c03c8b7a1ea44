"""How far off the ranges are: MAE in metres and percent error, overall and per distance bin.

Percent error is |estimate − truth| / truth. A bin holds the objects whose *true* distance is in
[low, high); objects outside every bin count overall only. A bin with fewer test images than
`distance.min_images_per_bin` is marked `thin` (the seed asks for 20+ images per distance point).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def _errors(estimate: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(estimate)
    abs_m = np.abs(estimate[ok] - truth[ok])
    pct = 100.0 * abs_m / truth[ok]
    return {
        "objects": int(len(truth)),
        "no_estimate": int((~ok).sum()),
        "mae_m": _round(abs_m.mean()) if len(abs_m) else None,
        "mean_abs_pct": _round(pct.mean()) if len(pct) else None,
        "median_abs_pct": _round(float(np.median(pct))) if len(pct) else None,
    }


def range_errors(
    estimate_m: np.ndarray,
    truth_m: np.ndarray,
    image_ids: np.ndarray,
    edges_m: Sequence[float],
    labels: Sequence[str],
    min_images: int,
) -> dict[str, Any]:
    """Overall and per-bin errors of estimates against true distances (aligned arrays, metres)."""
    estimate = np.asarray(estimate_m, dtype=np.float64)
    truth = np.asarray(truth_m, dtype=np.float64)
    images = np.asarray(image_ids)
    per_bin = {}
    for label, lo, hi in zip(labels, edges_m, edges_m[1:], strict=False):
        mask = (truth >= lo) & (truth < hi)
        count = len(np.unique(images[mask]))
        per_bin[label] = {
            "images": count,
            **_errors(estimate[mask], truth[mask]),
            "thin": count < min_images,
        }
    return {**_errors(estimate, truth), "per_bin": per_bin}
