"""Fit, choose and export confidence calibration: Platt, isotonic or temperature, per class or global.

- Platt: logistic regression on logit(score) — p = σ(a·logit(s) + b), rejected unless a > 0.
- Isotonic: a non-decreasing step fit of correct ~ score (sklearn, out-of-bounds clipped).
- Temperature: p = σ(logit(s) / T), one scalar fitted by NLL (scipy, bounded in log T).
- Identity (optional candidate): no change — wins when nothing beats the raw scores out of fold.

A class gets its own fit when it has at least `min_samples` val detections and both outcomes (at
least two of each); otherwise it uses the global fit, and the mapping records why. Among the
candidate methods, the one with the lowest out-of-fold NLL (or ECE) in a stratified k-fold over the
*val* detections is chosen — the test split is only ever measured, never used to choose.

Every candidate becomes a lookup table of knots (uniform in score, denser near 0 and 1 in logit
space, the isotonic breakpoints, and the operating threshold) — and it is that table, not the
sklearn object, that is scored, exported and measured, so what ships is what was evaluated.

The operating threshold. The table is made *strictly* increasing by blending a sliver of the
identity in: y = (1 − ε)·f(x) + ε·x with ε = `TIE_BREAK` (at most ε of calibration error). Isotonic
fits are flat in places, and a flat piece across the operating threshold would merge kept and
dropped boxes into one calibrated value; after the blend, s ≥ t ⟺ g(s) ≥ g(t) for every raw score,
and, because a strictly increasing map keeps each class's ranking, per-class AP is unchanged too. The
raw threshold t is a knot, and with `keep_operating_threshold` each entry records g_c(t) as the
calibrated threshold of its class: the deployed model keeps exactly the boxes it kept before, only
their confidences now mean what they say. With `keep_operating_threshold: false` the raw threshold is
reused as a calibrated one (the kept set changes, and `metrics/calibrate.json` counts by how much).
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

from vigil.release.ece import expected_calibration_error
from vigil.release.mapping import SCHEMA
from vigil.release.params import CalibrateParams

EPS = 1e-6  # scores are clipped to [EPS, 1 − EPS] before a logit or a log
TIE_BREAK = 1e-4  # ε of the identity blended in, so every table is strictly increasing
MIN_PER_OUTCOME = (
    2  # correct and incorrect detections a fit needs at the least (k-fold needs both in each fold)
)

Calibrator = Callable[[np.ndarray], np.ndarray]


def logit(scores: np.ndarray) -> np.ndarray:
    s = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1 - EPS)
    return np.log(s) - np.log1p(-s)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def nll(prob: np.ndarray, correct: np.ndarray) -> float:
    """Mean binary negative log-likelihood of `correct` under `prob`."""
    p = np.clip(prob, EPS, 1 - EPS)
    y = np.asarray(correct, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_platt(scores: np.ndarray, correct: np.ndarray) -> tuple[Calibrator, np.ndarray] | None:
    """σ(a·logit(s) + b) by (nearly unregularized) logistic regression; None unless a > 0 (monotone)."""
    model = LogisticRegression(C=1e4, max_iter=1000).fit(
        logit(scores)[:, None], correct.astype(int)
    )
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if a <= 0:
        return None
    return (lambda s: sigmoid(a * logit(s) + b)), np.zeros(0)


def fit_isotonic(scores: np.ndarray, correct: np.ndarray) -> tuple[Calibrator, np.ndarray]:
    """Non-decreasing fit; its breakpoints become knots so the table reproduces it exactly."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(np.asarray(scores, dtype=np.float64), correct.astype(np.float64))
    return (lambda s: model.predict(np.asarray(s, dtype=np.float64))), np.asarray(
        model.X_thresholds_
    )


def fit_temperature(scores: np.ndarray, correct: np.ndarray) -> tuple[Calibrator, np.ndarray]:
    """σ(logit(s) / T), T minimizing the NLL, searched in log T ∈ [−3, 3] (T from 0.05 to 20)."""
    z = logit(scores)
    result = minimize_scalar(
        lambda log_t: nll(sigmoid(z / np.exp(log_t)), correct),
        bounds=(-3.0, 3.0),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = float(np.exp(result.x))
    return (lambda s: sigmoid(logit(s) / temperature)), np.zeros(0)


def fit_identity(scores: np.ndarray, correct: np.ndarray) -> tuple[Calibrator, np.ndarray]:
    return (lambda s: np.asarray(s, dtype=np.float64)), np.zeros(0)


FITTERS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[Calibrator, np.ndarray] | None]] = {
    "platt": fit_platt,
    "isotonic": fit_isotonic,
    "temperature": fit_temperature,
    "identity": fit_identity,
}


@dataclass(frozen=True)
class Knots:
    """A strictly increasing lookup table: raw score x → calibrated y, linear in between."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0), self.x, self.y)


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


def fit_knots(
    method: str, scores: np.ndarray, correct: np.ndarray, count: int, threshold: float
) -> Knots | None:
    """Fit `method` and tabulate it (strictly increasing); None when the method does not apply."""
    fitted = FITTERS[method](scores, correct)
    if fitted is None:
        return None
    calibrator, breakpoints = fitted
    x = knot_grid(count, np.append(breakpoints, threshold))
    y = np.clip(calibrator(x), 0.0, 1.0)
    return Knots(x, (1 - TIE_BREAK) * y + TIE_BREAK * x)


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
    splits: list[tuple[np.ndarray, np.ndarray]],
    params: CalibrateParams,
) -> np.ndarray | None:
    """Each detection calibrated by a fit that did not see it; None when the method fails in a fold."""
    oof = np.empty(len(scores))
    for train, held in splits:
        knots = fit_knots(
            method, scores[train], correct[train], params.knots, params.operating_threshold
        )
        if knots is None:
            return None
        oof[held] = knots(scores[held])
    return oof


def cross_validate(
    scores: np.ndarray, correct: np.ndarray, params: CalibrateParams, folds: int, seed: int
) -> dict[str, float | None]:
    """Out-of-fold criterion per candidate method (None: the method did not apply in some fold)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(scores[:, None], correct.astype(int)))
    out: dict[str, float | None] = {}
    for method in params.methods:
        oof = out_of_fold(method, scores, correct, splits, params)
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


def fit_group(
    scores: np.ndarray, correct: np.ndarray, params: CalibrateParams, seed: int
) -> dict[str, Any]:
    """Choose a method for one group of detections by k-fold, refit it on all of them, tabulate it."""
    hits = int(np.sum(correct))
    folds = min(params.folds, hits, len(correct) - hits)
    selection = cross_validate(scores, correct, params, folds, seed)
    valid = {m: v for m, v in selection.items() if v is not None}
    method = min(valid, key=lambda m: (valid[m], params.methods.index(m))) if valid else "identity"
    knots = fit_knots(method, scores, correct, params.knots, params.operating_threshold)
    assert (
        knots is not None
    )  # a method valid in every fold applies to all the data (identity always does)
    return {
        "method": method,
        "selection": selection,
        "folds": folds,
        "x": knots.x.tolist(),
        "y": knots.y.tolist(),
        "counts": {"detections": len(correct), "correct": hits},
    }


def identity_entry(
    reason: str, scores: np.ndarray, correct: np.ndarray, params: CalibrateParams
) -> dict[str, Any]:
    knots = fit_knots("identity", scores, correct, params.knots, params.operating_threshold)
    assert knots is not None
    return {
        "method": "identity",
        "reason": reason,
        "selection": {},
        "folds": 0,
        "x": knots.x.tolist(),
        "y": knots.y.tolist(),
        "counts": {"detections": len(correct), "correct": int(np.sum(correct))},
    }


def _threshold(entry: dict[str, Any], params: CalibrateParams) -> float:
    if not params.keep_operating_threshold:
        return params.operating_threshold
    return float(np.interp(params.operating_threshold, entry["x"], entry["y"]))


def fit_calibration(
    scores: np.ndarray,
    classes: np.ndarray,
    correct: np.ndarray,
    class_names: list[str],
    params: CalibrateParams,
    seed: int,
) -> dict[str, Any]:
    """The whole mapping (JSON-ready) from val detections already filtered by `min_score`."""
    scores = np.asarray(scores, dtype=np.float64)
    classes = np.asarray(classes, dtype=np.int64)
    correct = np.asarray(correct, dtype=bool)
    reason = eligibility(correct, MIN_PER_OUTCOME)
    if not len(correct):
        reason = f"no val detections with score >= calibrate.min_score ({params.min_score}): nothing to fit"
    glob = (
        identity_entry(f"global: {reason}", scores, correct, params)
        if reason
        else fit_group(scores, correct, params, seed)
    )
    glob["threshold"] = _threshold(glob, params)
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
                **fit_group(scores[mask], correct[mask], params, seed),
            }
        entry["threshold"] = _threshold(entry, params) if "x" in entry else glob["threshold"]
        entries[str(cls)] = entry
    return {
        "schema": SCHEMA,
        "apply": "entry = classes[str(class_id)] if it has x/y, else global; "
        "calibrated = interp(clip(score, 0, 1), x, y) (linear); keep the box if calibrated >= entry.threshold",
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
