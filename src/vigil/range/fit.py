"""Inverse-range signal → metres: distance = 1 / (scale · signal + shift), fitted on known distances.

Why the inverse and why this loss:

- Depth Anything (like MiDaS) predicts *affine-invariant inverse depth*: disparity = a / d + b with
  a, b unknown per model and camera. So metric depth needs a scale and a shift fitted in inverse
  space, not a scale on d (the seed's `scale = median(d · disparity)` is the shift = 0 case, kept as
  `range.fit.shift: false`). The geometric signal h / (fy · H) is 1 / d already; a detector's boxes
  a constant few pixels too tall add a shift, a wrong class height a scale.
- Range errors are judged relative to the range (percent error per distance bin), and plain least
  squares on 1/d would be ruled by the nearest objects, on d by the farthest. Dividing the residual
  by the true inverse range makes it relative: regress 1 on [signal · d, d] without intercept, so
  the residual is d / d̂ − 1. sklearn's HuberRegressor fits it robustly: a detection matched to the
  wrong true box, or a depth sample that hit the background, counts linearly, not squared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.errors import VigilError


@dataclass(frozen=True)
class InverseAffine:
    """distance = 1 / (scale · signal + shift); (1, 0) is the identity on a signal that is 1 / d."""

    scale: float
    shift: float

    def metres(self, signal: np.ndarray) -> np.ndarray:
        """Distance in metres per signal; NaN where the mapped inverse range is not positive."""
        inverse = self.scale * np.asarray(signal, dtype=np.float64) + self.shift
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(inverse > 0, 1.0 / inverse, np.nan)

    def as_json(self) -> dict[str, Any]:
        return {"scale": float(self.scale), "shift": float(self.shift)}


IDENTITY = InverseAffine(1.0, 0.0)


def fit_inverse_affine(
    signal: np.ndarray, distance_m: np.ndarray, *, shift: bool, epsilon: float
) -> InverseAffine:
    """Fit scale (and shift) so that 1 / (scale · signal + shift) ≈ distance, in relative error.

    Pairs with a non-finite signal or a non-positive distance are left out; fewer than two left is
    an error (the caller decides what too few means before calling).
    """
    from sklearn.linear_model import HuberRegressor

    x = np.asarray(signal, dtype=np.float64)
    d = np.asarray(distance_m, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(d) & (d > 0)
    x, d = x[ok], d[ok]
    if len(x) < 2:
        raise VigilError(f"{len(x)} objects of known distance with an estimate: too few to fit")
    columns = np.stack([x * d, d], axis=1) if shift else (x * d)[:, None]
    norms = np.sqrt(np.mean(columns**2, axis=0))
    norms[norms == 0] = 1.0  # a constant-zero column: its coefficient stays 0
    model = HuberRegressor(epsilon=epsilon, alpha=0.0, fit_intercept=False, max_iter=1000)
    model.fit(columns / norms, np.ones(len(x)))
    coef = model.coef_ / norms
    return InverseAffine(float(coef[0]), float(coef[1]) if shift else 0.0)
