"""ECE, D-ECE and reliability data: tiny cases worked by hand, known miscalibrations, the CSV."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from vigil.metrics.matching import MatchedDetections
from vigil.release.ece import (
    bin_index,
    dece_floor,
    detection_ece,
    ece_floor,
    expected_calibration_error,
    reliability,
    reliability_csv,
)


def matched(
    scores: list[float], correct: list[int], cx: list[float] | None = None
) -> MatchedDetections:
    n = len(scores)
    boxes = np.full((n, 4), 0.25)
    if cx is not None:
        boxes[:, 0] = cx
    return MatchedDetections(
        np.array(scores, dtype=float),
        np.zeros(n, dtype=np.int64),
        np.array(correct, dtype=bool),
        boxes,
    )


def test_ece_tiny_case_by_hand() -> None:
    # 4 bins of width 0.25.
    #   bin [0, .25):   0.1 ✗, 0.2 ✓          mean conf 0.15,  precision 1/2 → |0.5 − 0.15|  = 0.35,  n = 2
    #   bin [.5, .75):  0.6 ✓, 0.7 ✗, 0.7 ✓   mean conf 2/3,   precision 2/3 → 0,               n = 3
    #   bin [.75, 1]:   0.9 ✓, 0.9 ✓, 0.9 ✗   mean conf 0.9,   precision 2/3 → 0.2333…,         n = 3
    # ECE = (2·0.35 + 3·0 + 3·0.23333) / 8 = (0.7 + 0.7) / 8 = 0.175
    scores = [0.1, 0.2, 0.6, 0.7, 0.7, 0.9, 0.9, 0.9]
    correct = [0, 1, 1, 0, 1, 1, 1, 0]
    assert expected_calibration_error(np.array(scores), np.array(correct), bins=4) == pytest.approx(
        0.175
    )


def test_dece_tiny_case_by_hand() -> None:
    # Six detections, grid confidence (2 bins) × cx (2 bins: left < 0.5 ≤ right):
    #   A 0.9 left ✓, B 0.9 left ✓, C 0.9 right ✗, D 0.9 right ✓, E 0.3 left ✗, F 0.3 right ✓
    # Confidence only (ECE, 2 bins): high {A..D} precision 3/4 vs 0.9 → 0.15·4 = 0.6;
    #                                low {E, F} precision 1/2 vs 0.3 → 0.2·2 = 0.4;   ECE = 1.0 / 6 = 0.16667
    # D-ECE cells: (high, left) A B: |1 − 0.9|·2 = 0.2;  (high, right) C D: |0.5 − 0.9|·2 = 0.8;
    #              (low, left) E: |0 − 0.3| = 0.3;       (low, right) F: |1 − 0.3| = 0.7
    #              D-ECE = (0.2 + 0.8 + 0.3 + 0.7) / 6 = 2.0 / 6 = 0.33333
    m = matched(
        [0.9, 0.9, 0.9, 0.9, 0.3, 0.3], [1, 1, 0, 1, 0, 1], cx=[0.25, 0.25, 0.75, 0.75, 0.25, 0.75]
    )
    assert expected_calibration_error(m.scores, m.correct, bins=2) == pytest.approx(1 / 6)
    assert detection_ece(m, {"confidence": 2, "cx": 2}) == pytest.approx(2 / 6)
    assert detection_ece(m, {"confidence": 2}) == pytest.approx(
        1 / 6
    )  # confidence only: D-ECE = ECE


def test_all_at_0_9_with_60_percent_correct_is_0_3() -> None:
    scores = np.full(1000, 0.9)
    correct = np.arange(1000) < 600
    assert expected_calibration_error(scores, correct, bins=10) == pytest.approx(0.3)
    # same precision in every geometric cell (alternating placement) → D-ECE is 0.3 too
    m = matched(list(scores), list(correct), cx=list(np.where(np.arange(1000) % 2, 0.2, 0.8)))
    assert detection_ece(m, {"confidence": 10, "cx": 2}) == pytest.approx(0.3)


def test_accuracy_score_squared_gives_one_sixth() -> None:
    # P(correct | s) = s² with s uniform: ECE → ∫ (s − s²) ds = 1/2 − 1/3 = 1/6 (every bin is overconfident)
    rng = np.random.default_rng(0)
    s = rng.uniform(size=200_000)
    correct = rng.uniform(size=s.size) < s**2
    assert expected_calibration_error(s, correct, bins=10) == pytest.approx(1 / 6, abs=0.004)


def test_dece_sees_position_dependent_miscalibration_that_ece_misses() -> None:
    # calibrated on average, but right-hand boxes are always wrong and left-hand ones always right
    n = 2000
    m = matched([0.5] * n, [1, 0] * (n // 2), cx=[0.25, 0.75] * (n // 2))
    assert expected_calibration_error(m.scores, m.correct, bins=10) == pytest.approx(0.0)
    assert detection_ece(m, {"confidence": 10, "cx": 2}) == pytest.approx(0.5)


def test_dece_is_never_below_ece_with_the_same_confidence_bins() -> None:
    rng = np.random.default_rng(1)
    n = 500
    m = MatchedDetections(
        rng.uniform(size=n),
        np.zeros(n, dtype=np.int64),
        rng.uniform(size=n) < 0.5,
        rng.uniform(size=(n, 4)),
    )
    bins = {"confidence": 5, "cx": 2, "cy": 2, "w": 2, "h": 2}
    assert detection_ece(m, bins) >= expected_calibration_error(m.scores, m.correct, bins=5) - 1e-12


def test_bin_edges_and_empty_input() -> None:
    assert bin_index(np.array([0.0, 0.099, 0.1, 0.5, 0.999, 1.0]), 10).tolist() == [
        0,
        0,
        1,
        5,
        9,
        9,
    ]
    assert np.isnan(expected_calibration_error(np.zeros(0), np.zeros(0), bins=10))


def test_reliability_bins_and_csv() -> None:
    scores = np.array([0.05, 0.15, 0.15, 0.95])
    correct = np.array([0, 1, 0, 1])
    table = reliability(scores, correct, bins=10)
    assert [b.count for b in table] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert table[1].mean_confidence == pytest.approx(0.15) and table[1].precision == pytest.approx(
        0.5
    )
    assert table[2].precision is None
    rows = list(csv.DictReader(io.StringIO(reliability_csv(table, table))))
    assert len(rows) == 10
    assert rows[1]["confidence"] == "0.150000" and rows[1]["precision_before"] == "0.500000"
    assert rows[2]["precision_after"] == ""  # empty bin: a gap, not a made-up point
    assert rows[9]["count_after"] == "1"


def test_floor_tiny_cases_by_hand() -> None:
    # one detection at 0.5: |1 − 0.5| or |0 − 0.5|, either way 0.5
    assert ece_floor(np.array([0.5]), 10) == pytest.approx(0.5)
    # two at 0.5 in one bin: S ∈ {0, 1, 2} w.p. ¼ ½ ¼ → E|S − 1| = ½, over N = 2 → ¼
    assert ece_floor(np.array([0.5, 0.5]), 10) == pytest.approx(0.25)
    # scores of exactly 0 and 1 are never wrong about themselves
    assert ece_floor(np.array([0.0, 1.0, 1.0]), 10) == pytest.approx(0.0)
    # the same two at 0.5 in two D-ECE cells (cx apart): each is its own cell → 0.5
    assert dece_floor(matched([0.5, 0.5], [1, 0], cx=[0.1, 0.9]), {"confidence": 5, "cx": 2}) == (
        pytest.approx(0.5)
    )
    assert np.isnan(ece_floor(np.zeros(0), 10))


def test_floor_is_what_a_perfectly_calibrated_detector_measures_on_average() -> None:
    rng = np.random.default_rng(0)
    n = 400
    scores = rng.uniform(0.05, 0.95, n)
    boxes = rng.uniform(size=(n, 4))
    grid = {"confidence": 5, "cx": 2, "cy": 2, "w": 2, "h": 2}
    draws = []
    for _ in range(400):  # labels drawn from the scores themselves: calibrated by construction
        correct = rng.uniform(size=n) < scores
        draws.append(
            detection_ece(MatchedDetections(scores, np.zeros(n, dtype=int), correct, boxes), grid)
        )
    floor = dece_floor(MatchedDetections(scores, np.zeros(n, dtype=int), correct, boxes), grid)
    assert floor > 0.05  # 80 cells for 400 detections: a large bias
    assert np.mean(draws) == pytest.approx(floor, rel=0.03)
