"""Calibration error: ECE, the detection ECE (D-ECE) and the reliability diagram's data.

ECE: confidences go into `bins` equal-width bins over [0, 1] (bin = floor(c · bins), 1.0 in the last);
ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b| over the non-empty bins. For detections,
"accuracy" is the precision of the bin: the share of its detections matched to a ground-truth box.

D-ECE (Küppers et al., "Multivariate Confidence Calibration for Object Detection", CVPR-W 2020):
the same weighted average, but the bins are cells of a grid over confidence *and* box geometry —
any of cx, cy, w, h (normalized to the image), each with its own number of equal-width bins. A
detector can be calibrated on average yet overconfident at the image border or for small boxes;
D-ECE sees that, ECE does not. With only the confidence dimension, D-ECE equals ECE.

The floor. A binned calibration error is biased upwards: even a perfectly calibrated detector
measures |hits − Σ confidence| > 0 in a cell by chance, and the more cells per detection (D-ECE's
grid has many), the larger that bias. `calibrated_floor` is its exact expectation — the error a
detector whose scores are *exactly* its probabilities of being correct would show on the same
boxes and bins (per cell, the number of hits is then a Poisson-binomial count) — so an error near
its floor means the data cannot tell the scores from perfect.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from vigil.metrics.matching import MatchedDetections


def bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each value in [0, 1]: floor(v · bins), with 1.0 (and above) in the last bin."""
    return np.clip(
        np.floor(np.asarray(values, dtype=np.float64) * bins).astype(np.int64), 0, bins - 1
    )


def _binned_error(cells: np.ndarray, confidence: np.ndarray, correct: np.ndarray) -> float:
    if not len(confidence):
        return float("nan")
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    conf_sum = np.bincount(inverse, weights=confidence)
    hit_sum = np.bincount(inverse, weights=correct.astype(np.float64))
    return float(np.abs(hit_sum - conf_sum).sum() / len(confidence))  # Σ n_b |acc_b − conf_b| / N


def _cells_of(cells: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(cells, kind="stable")
    _, starts = np.unique(cells[order], return_index=True)
    return np.split(order, starts[1:])


def _expected_abs_deviation(probs: np.ndarray) -> float:
    """E|S − Σp| for S the number of successes of independent Bernoulli(p_i) (Poisson-binomial)."""
    pmf = np.ones(1)
    for p in probs:  # the distribution of the count, one detection at a time
        pmf = np.concatenate([pmf * (1 - p), [0.0]]) + np.concatenate([[0.0], pmf * p])
    return float(np.abs(np.arange(len(pmf)) - probs.sum()) @ pmf)


def _floor(cells: np.ndarray, confidence: np.ndarray) -> float:
    if not len(confidence):
        return float("nan")
    total = sum(_expected_abs_deviation(confidence[idx]) for idx in _cells_of(cells))
    return total / len(confidence)


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """ECE over equal-width confidence bins, weighted by count (NaN when there is nothing to measure)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    return _binned_error(bin_index(confidence, bins), confidence, np.asarray(correct))


def detection_ece(matched: MatchedDetections, dece_bins: dict[str, int]) -> float:
    """D-ECE over a grid of confidence × box dimensions; `dece_bins` maps dimension → number of bins."""
    return _binned_error(dece_cells(matched, dece_bins), matched.scores, matched.correct)


def dece_cells(matched: MatchedDetections, dece_bins: dict[str, int]) -> np.ndarray:
    """The D-ECE grid cell of each detection (a mixed-radix number over the dimensions)."""
    dims = list(dece_bins)
    features = matched.features(dims)
    cells = np.zeros(len(matched), dtype=np.int64)
    for k, dim in enumerate(dims):
        cells = cells * dece_bins[dim] + bin_index(features[:, k], dece_bins[dim])
    return cells


def dece_floor(matched: MatchedDetections, dece_bins: dict[str, int]) -> float:
    """The D-ECE a perfectly calibrated detector with these scores and boxes would measure, on average."""
    scores = np.clip(np.asarray(matched.scores, dtype=np.float64), 0.0, 1.0)
    return _floor(dece_cells(matched, dece_bins), scores)


def ece_floor(confidence: np.ndarray, bins: int = 10) -> float:
    """The ECE a perfectly calibrated detector with these scores would measure, on average."""
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    return _floor(bin_index(confidence, bins), confidence)


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float | None  # None for an empty bin
    precision: float | None


def reliability(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> list[ReliabilityBin]:
    """Per equal-width bin: count, mean confidence and precision (the reliability diagram)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    idx = bin_index(confidence, bins)
    counts = np.bincount(idx, minlength=bins)
    conf_sum = np.bincount(idx, weights=confidence, minlength=bins)
    hit_sum = np.bincount(idx, weights=np.asarray(correct, dtype=np.float64), minlength=bins)
    out = []
    for b in range(bins):
        n = int(counts[b])
        out.append(
            ReliabilityBin(
                b / bins,
                (b + 1) / bins,
                n,
                conf_sum[b] / n if n else None,
                hit_sum[b] / n if n else None,
            )
        )
    return out


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def reliability_csv(before: list[ReliabilityBin], after: list[ReliabilityBin]) -> str:
    """One row per bin, before and after side by side; x = bin centre, `ideal` = the diagonal.

    Empty bins leave their cells blank (a gap in the plot, not a fake point).
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(
        [
            "confidence",
            "ideal",
            "precision_before",
            "precision_after",
            "mean_confidence_before",
            "mean_confidence_after",
            "count_before",
            "count_after",
            "bin_lower",
            "bin_upper",
        ]
    )
    for b, a in zip(before, after, strict=True):
        centre = (b.lower + b.upper) / 2
        writer.writerow(
            [
                f"{centre:.6f}",
                f"{centre:.6f}",
                _cell(b.precision),
                _cell(a.precision),
                _cell(b.mean_confidence),
                _cell(a.mean_confidence),
                b.count,
                a.count,
                f"{b.lower:.6f}",
                f"{b.upper:.6f}",
            ]
        )
    return text.getvalue()
