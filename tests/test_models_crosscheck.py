"""ultralytics' AP code on our detections, against the COCO numbers on the same hand cases.

The two formulas differ on purpose-built cases by a known amount: COCO averages the precision
envelope at 101 recall points (0, .01, …, 1); ultralytics integrates it with the trapezoid rule
after dropping it to 0 just past the highest recall reached.
"""

from __future__ import annotations

import pytest

from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.coco import evaluate_coco
from vigil.models.crosscheck import ultralytics_ap

BOX = [100.0, 50.0, 200.0, 150.0]


def both(truth: ImageTruth, dets: ImageDetections) -> tuple[dict, dict]:
    ours = evaluate_coco([truth], [dets], ["cat"]).metrics
    return {"map50": ours["map50"], "map50_95": ours["map50_95"]}, ultralytics_ap([truth], [dets])


def test_perfect_box_is_one_for_coco_and_0_995_for_ultralytics() -> None:
    ours, theirs = both(
        ImageTruth("a.jpg", 320, 240, [BOX], [0]), ImageDetections([BOX], [0.9], [0])
    )
    assert ours == {"map50": 1.0, "map50_95": 1.0}
    # trapezoid: 99 intervals at precision 1, the last one from 1 down to 0 → 0.99 + 0.005
    assert theirs == {"map50": pytest.approx(0.995), "map50_95": pytest.approx(0.995)}


def test_half_recall_is_51_of_101_for_coco_and_0_495_for_ultralytics() -> None:
    truth = ImageTruth("a.jpg", 320, 240, [BOX, [10, 10, 40, 40]], [0, 0])
    ours, theirs = both(truth, ImageDetections([BOX], [0.9], [0]))
    assert ours["map50"] == pytest.approx(51 / 101, abs=1e-6)  # 0.504950
    assert theirs["map50"] == pytest.approx(0.495)  # 0.49 + half of the .49-.50 step


def test_shifted_box_matches_at_the_same_thresholds_in_both() -> None:
    ours, theirs = both(
        ImageTruth("a.jpg", 320, 240, [BOX], [0]),
        ImageDetections([[116.0, 50.0, 216.0, 150.0]], [0.9], [0]),
    )  # IoU 84/116 = 0.724
    assert ours["map50_95"] == pytest.approx(0.5, abs=1e-6)
    assert theirs["map50_95"] == pytest.approx(0.5 * 0.995)  # 5 of 10 thresholds, each 0.995


def test_empty_cases() -> None:
    assert ultralytics_ap([ImageTruth("a.jpg", 320, 240, [BOX], [0])], [ImageDetections()]) == {
        "map50": 0.0,
        "map50_95": 0.0,
    }
    assert ultralytics_ap([ImageTruth("a.jpg", 320, 240)], [ImageDetections()]) == {
        "map50": None,
        "map50_95": None,
    }
