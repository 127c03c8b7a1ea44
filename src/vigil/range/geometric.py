"""The pinhole range: an object H metres tall that spans h pixels at focal length fy is fy · H / h away.

The estimator's signal is the inverse, h / (fy · H): exact 1 / distance for an upright object whose
box height is its true height, and linear in the box's pixel height, so a detector's box bias (a few
pixels too tall or short) is a shift of the signal that `fit` can learn.
"""

from __future__ import annotations

import numpy as np


def inverse_range(box_heights_px: np.ndarray, heights_m: np.ndarray, fy: float) -> np.ndarray:
    """h / (fy · H) per box, in 1/metres; NaN where the class has no height (NaN) or the box is flat."""
    h = np.asarray(box_heights_px, dtype=np.float64)
    tall = np.asarray(heights_m, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        signal = h / (fy * tall)
    return np.where((h > 0) & np.isfinite(signal), signal, np.nan)


def geometric_range(box_heights_px: np.ndarray, heights_m: np.ndarray, fy: float) -> np.ndarray:
    """fy · H / h per box, in metres (NaN where there is no estimate)."""
    return 1.0 / inverse_range(box_heights_px, heights_m, fy)
