"""Fit, choose and export confidence calibration: Platt, isotonic, temperature or position-aware.

- Platt: logistic regression on logit(score) — p = σ(a·logit(s) + b), rejected unless a > 0.
- Isotonic: a non-decreasing step fit of correct ~ score (sklearn, out-of-bounds clipped).
- Temperature: p = σ(logit(s) / T), one scalar fitted by NLL (scipy, bounded in log T).
- Position: Platt plus box geometry, as the logistic calibration of Küppers et al. 2020
  ("Multivariate Confidence Calibration for Object Detection"): p = σ(a·logit(s) + w·f + b) with f
  the box's `position_features` (cx, cy, w, h as fractions of the image), by L2-regularized logistic
  regression (sklearn, C = `position_c`), rejected unless a > 0. It is written as a shift of the
  score, u = σ(logit(s) + (w/a)·f), followed by the Platt table σ(a·logit(u) + b), so that what
  ships is one more vector per entry and the same table as the others (`vigil.release.mapping`).
- Identity (optional candidate): no change — wins when nothing beats the raw scores out of fold.

A class gets its own fit when it has at least `min_samples` val detections and both outcomes (at
least two of each); otherwise it uses the global fit, and the mapping records why. Among the
candidate methods, the one with the lowest out-of-fold NLL (or ECE) in a stratified k-fold over the
*val* detections is chosen — the test split is only ever measured, never used to choose.

Every candidate becomes a lookup table of knots (uniform in score, denser near 0 and 1 in logit
space, the isotonic breakpoints, and the operating threshold) — and it is that table (with its
shift), not the sklearn object, that is scored, exported and measured, so what ships is what was
evaluated.

The tables are made *strictly* increasing by blending a sliver of the identity in: y = (1 − ε)·f(x)
+ ε·x with ε = `TIE_BREAK` (at most ε of calibration error); isotonic fits are flat in places, and
a strictly increasing map keeps each class's ranking of score-only entries (per-class AP unchanged).

The operating threshold. With `keep_operating_threshold` the mapping keeps a box when its *raw*
score is at least `operating_threshold`: exactly the boxes kept before calibration, whatever the
method — a position-aware score is not monotone in the raw score alone, so no calibrated threshold
could promise that. Only the confidences change, and now mean what they say. With
`keep_operating_threshold: false` the raw threshold is applied to the calibrated score instead (the
kept set changes, and `metrics/calibrate.json` counts by how much; the gate holds it at 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from vigil.metrics.matching import BOX_DIMS, MatchedDetections
from vigil.release.ece import expected_calibration_error
from vigil.release.mapping import LOGIT_EPS, SCHEMA, logit, shifted_scores
from vigil.release.params import CalibrateParams

EPS = LOGIT_EPS  # scores are clipped to [EPS, 1 − EPS] before a logit or a log
TIE_BREAK = 1e-4  # ε of the identity blended in, so every table is strictly increasing
MIN_PER_OUTCOME = (
    2  # correct and incorrect detections a fit needs at the least (k-fold needs both in each fold)
)

Calibrator = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Fit:
    """A fitted method: `calibrator` of the (shifted) score, extra knots, and the shift (None: none)."""

    calibrator: Calibrator
    breakpoints: np.ndarray
    shift: np.ndarray | None = None


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def nll(prob: np.ndarray, correct: np.ndarray) -> float:
    """Mean binary negative log-likelihood of `correct` under `prob`."""
    p = np.clip(prob, EPS, 1 - EPS)
    y = np.asarray(correct, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(prob: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared difference between `prob` and the 0/1 outcome."""
    return float(np.mean((np.asarray(prob, dtype=np.float64) - np.asarray(correct)) ** 2))


def fit_platt(
    scores: np.ndarray, correct: np.ndarray, features: np.ndarray, params: CalibrateParams
) -> Fit | None:
    """σ(a·logit(s) + b) by (nearly unregularized) logistic regression; None unless a > 0 (monotone)."""
    model = LogisticRegression(C=1e4, max_iter=1000).fit(
        logit(scores)[:, None], correct.astype(int)
    )
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if a <= 0:
        return None
    return Fit(lambda s: sigmoid(a * logit(s) + b), np.zeros(0))


def fit_position(
    scores: np.ndarray, correct: np.ndarray, features: np.ndarray, params: CalibrateParams
) -> Fit | None:
    """σ(a·logit(s) + w·f + b), L2-regularized (C = position_c); None unless a > 0.

    Returned as the shift w / a of logit(s) and the Platt table σ(a·logit(u) + b) of the shifted score.
    """
    x = np.column_stack([logit(scores), features])
    model = LogisticRegression(C=params.position_c, max_iter=5000).fit(x, correct.astype(int))
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if a <= 0:
        return None
    return Fit(lambda u: sigmoid(a * logit(u) + b), np.zeros(0), model.coef_[0, 1:] / a)


def fit_isotonic(
    scores: np.ndarray, correct: np.ndarray, features: np.ndarray, params: CalibrateParams
) -> Fit:
    """Non-decreasing fit; its breakpoints become knots so the table reproduces it exactly."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(scores, dtype=np.float64), correct.astype(np.float64))
    return Fit(
        lambda s: model.predict(np.asarray(s, dtype=np.float64)), np.asarray(model.X_thresholds_)
    )


def fit_temperature(
    scores: np.ndarray, correct: np.ndarray, features: np.ndarray, params: CalibrateParams
) -> Fit:
    """σ(logit(s) / T), T minimizing the NLL, searched in log T ∈ [−3, 3] (T from 0.05 to 20)."""
    z = logit(scores)
    result = minimize_scalar(
        lambda log_t: nll(sigmoid(z / np.exp(log_t)), correct),
        bounds=(-3.0, 3.0),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = float(np.exp(result.x))
    return Fit(lambda s: sigmoid(logit(s) / temperature), np.zeros(0))


def fit_identity(
    scores: np.ndarray, correct: np.ndarray, features: np.ndarray, params: CalibrateParams
) -> Fit:
    return Fit(lambda s: np.asarray(s, dtype=np.float64), np.zeros(0))


FITTERS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, CalibrateParams], Fit | None]] = {
    "platt": fit_platt,
    "isotonic": fit_isotonic,
    "temperature": fit_temperature,
    "position": fit_position,
    "identity": fit_identity,
}


@dataclass(frozen=True)
class Knots:
    """A strictly increasing lookup table: (shifted) score x → calibrated y, linear in between.

    `shift` (one weight per `features` name) makes it position-aware: the table then reads
    σ(logit(s) + shift · f) — `vigil.release.mapping.shifted_scores`, the code that ships.
    """

    x: np.ndarray
    y: np.ndarray
    shift: np.ndarray | None = None
    features: tuple[str, ...] = ()

    def __call__(self, scores: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        """Calibrated `scores`; `boxes` (n, 4) cx cy w h are needed when the table has a shift."""
        s = np.asarray(scores, dtype=np.float64)
        if self.shift is not None:
            if boxes is None:
                raise ValueError("a position-aware table needs the boxes")
            s = shifted_scores(s, boxes, list(self.features), self.shift)
        return np.interp(np.clip(s, 0.0, 1.0), self.x, self.y)


def knot_grid(count: int, extra: np.ndarray) -> np.ndarray:
    """Uniform knots on [0, 1], logit-spaced ones (dense near 0 and 1), plus `extra`, sorted, unique."""
    grid = np.concatenate(
        [
            np.linspace(0.0, 1.0, count),
            sigmoid(np.linspace(-12.0, 12.0, count)),
            np.asarray(extra, dtype=np.float64),
        ]
    )
    return np.unique(np.clip(grid, 0.0, 1.0))


def position_columns(boxes: np.ndarray, params: CalibrateParams) -> np.ndarray:
    """The `position_features` columns of (n, 4) cx cy w h boxes."""
    columns = [BOX_DIMS.index(f) for f in params.position_features]
    return np.asarray(boxes, dtype=np.float64).reshape(-1, len(BOX_DIMS))[:, columns]


def fit_knots(
    method: str,
    scores: np.ndarray,
    correct: np.ndarray,
    boxes: np.ndarray,
    params: CalibrateParams,
) -> Knots | None:
    """Fit `method` and tabulate it (strictly increasing); None when the method does not apply."""
    fitted = FITTERS[method](scores, correct, position_columns(boxes, params), params)
    if fitted is None:
        return None
    x = knot_grid(params.knots, np.append(fitted.breakpoints, params.operating_threshold))
    y = np.clip(fitted.calibrator(x), 0.0, 1.0)
    return Knots(
        x,
        (1 - TIE_BREAK) * y + TIE_BREAK * x,
        fitted.shift,
        tuple(params.position_features) if fitted.shift is not None else (),
    )


def criterion_value(criterion: str, prob: np.ndarray, correct: np.ndarray, bins: int) -> float:
    return (
        nll(prob, correct)
        if criterion == "nll"
        else expected_calibration_error(prob, correct, bins)
    )


def out_of_fold(
    method: str,
    scores: np.ndarray,
    correct: np.ndarray,
    boxes: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    params: CalibrateParams,
) -> np.ndarray | None:
    """Each detection calibrated by a fit that did not see it; None when the method fails in a fold."""
    oof = np.empty(len(scores))
    for train, held in splits:
        knots = fit_knots(method, scores[train], correct[train], boxes[train], params)
        if knots is None:
            return None
        oof[held] = knots(scores[held], boxes[held])
    return oof


def cross_validate(
    scores: np.ndarray,
    correct: np.ndarray,
    boxes: np.ndarray,
    params: CalibrateParams,
    folds: int,
    seed: int,
) -> dict[str, float | None]:
    """Out-of-fold criterion per candidate method (None: the method did not apply in some fold)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(scores[:, None], correct.astype(int)))
    out: dict[str, float | None] = {}
    for method in params.methods:
        oof = out_of_fold(method, scores, correct, boxes, splits, params)
        out[method] = (
            None
            if oof is None
            else round(criterion_value(params.criterion, oof, correct, params.bins), 6)
        )
    return out


def eligibility(correct: np.ndarray, min_samples: int) -> str | None:
    """None when a group of detections can have its own fit; else the reason it cannot."""
    n, hits = len(correct), int(np.sum(correct))
    if n < min_samples:
        return f"{n} val detections < min_samples {min_samples}"
    if min(hits, n - hits) < MIN_PER_OUTCOME:
        return f"{hits} correct and {n - hits} incorrect val detections: needs at least {MIN_PER_OUTCOME} of each"
    return None


def _table(knots: Knots) -> dict[str, Any]:
    table: dict[str, Any] = {"x": knots.x.tolist(), "y": knots.y.tolist()}
    if knots.shift is not None:
        table["shift"] = [float(v) for v in knots.shift]
    return table


def fit_group(
    scores: np.ndarray,
    correct: np.ndarray,
    boxes: np.ndarray,
    params: CalibrateParams,
    seed: int,
) -> dict[str, Any]:
    """Choose a method for one group of detections by k-fold, refit it on all of them, tabulate it."""
    hits = int(np.sum(correct))
    folds = min(params.folds, hits, len(correct) - hits)
    selection = cross_validate(scores, correct, boxes, params, folds, seed)
    valid = {m: v for m, v in selection.items() if v is not None}
    method = min(valid, key=lambda m: (valid[m], params.methods.index(m))) if valid else "identity"
    knots = fit_knots(method, scores, correct, boxes, params)
    assert (
        knots is not None
    )  # a method valid in every fold applies to all the data (identity always does)
    return {
        "method": method,
        "selection": selection,
        "folds": folds,
        **_table(knots),
        "counts": {"detections": len(correct), "correct": hits},
    }


def identity_entry(
    reason: str,
    scores: np.ndarray,
    correct: np.ndarray,
    boxes: np.ndarray,
    params: CalibrateParams,
) -> dict[str, Any]:
    knots = fit_knots("identity", scores, correct, boxes, params)
    assert knots is not None
    return {
        "method": "identity",
        "reason": reason,
        "selection": {},
        "folds": 0,
        **_table(knots),
        "counts": {"detections": len(correct), "correct": int(np.sum(correct))},
    }


def fit_calibration(
    detections: MatchedDetections, class_names: list[str], params: CalibrateParams, seed: int
) -> dict[str, Any]:
    """The whole mapping (JSON-ready) from val detections already filtered by `min_score`."""
    scores = np.asarray(detections.scores, dtype=np.float64)
    classes = np.asarray(detections.classes, dtype=np.int64)
    correct = np.asarray(detections.correct, dtype=bool)
    boxes = np.asarray(detections.boxes, dtype=np.float64).reshape(-1, len(BOX_DIMS))
    reason = eligibility(correct, MIN_PER_OUTCOME)
    if not len(correct):
        reason = f"no val detections with score >= calibrate.min_score ({params.min_score}): nothing to fit"
    glob = (
        identity_entry(f"global: {reason}", scores, correct, boxes, params)
        if reason
        else fit_group(scores, correct, boxes, params, seed)
    )
    entries: dict[str, Any] = {}
    ids = sorted(set(range(len(class_names))) | {int(c) for c in np.unique(classes)})
    for cls in ids:
        mask = classes == cls
        name = class_names[cls] if cls < len(class_names) else f"class_{cls}"
        reason = eligibility(correct[mask], params.min_samples)
        if reason:
            entry = {
                "name": name,
                "source": "global",
                "method": glob["method"],
                "reason": reason,
                "counts": {"detections": int(mask.sum()), "correct": int(correct[mask].sum())},
            }
        else:
            entry = {
                "name": name,
                "source": "class",
                **fit_group(scores[mask], correct[mask], boxes[mask], params, seed),
            }
        entries[str(cls)] = entry
    keep = "raw" if params.keep_operating_threshold else "calibrated"
    return {
        "schema": SCHEMA,
        "apply": "entry = classes[str(class_id)] if it has x/y, else global; "
        "s = score, or if the entry has shift: s = sigmoid(logit(clip(score, logit_eps, "
        "1 - logit_eps)) + sum(shift[k] * box[features[k]])), box = cx cy w h as fractions of the "
        "image clipped to [0, 1]; calibrated = interp(clip(s, 0, 1), x, y) (linear); "
        "keep the box if its keep.score (raw or calibrated) >= keep.threshold",
        "features": list(params.position_features),
        "logit_eps": LOGIT_EPS,
        "keep": {"score": keep, "threshold": params.operating_threshold},
        "operating_threshold": {
            "raw": params.operating_threshold,
            "keep_same_boxes": params.keep_operating_threshold,
        },
        "criterion": params.criterion,
        "min_score": params.min_score,
        "tie_break": TIE_BREAK,
        "global": glob,
        "classes": entries,
    }
