"""Matching detections to ground truth: greedy by score, one true box per detection, same class."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.matching import match_detections, match_image


def truth(
    boxes: list[list[float]], classes: list[int], width: int = 100, height: int = 100
) -> ImageTruth:
    return ImageTruth("images/a.jpg", width, height, boxes, classes)


def dets(triples: list[tuple[list[float], float, int]]) -> ImageDetections:
    return ImageDetections(
        [t[0] for t in triples], [t[1] for t in triples], [t[2] for t in triples]
    )


def test_greedy_by_score_one_truth_per_detection() -> None:
    gt = truth([[0, 0, 10, 10]], [0])
    # the lower-scored detection overlaps better, but the higher-scored one takes the box first
    assert match_image(
        gt, dets([([1, 0, 11, 10], 0.6, 0), ([0, 0, 10, 10], 0.4, 0)]), 0.5
    ).tolist() == [True, False]


def test_class_and_iou_threshold() -> None:
    gt = truth([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 1])
    found = dets(
        [
            ([0, 0, 10, 10], 0.9, 1),  # right place, wrong class
            ([5, 0, 15, 10], 0.8, 0),  # right class, IoU 1/3
            ([50, 50, 60, 60], 0.7, 1),
        ]
    )  # correct
    assert match_image(gt, found, 0.5).tolist() == [False, False, True]
    assert match_image(gt, found, 0.3).tolist() == [False, True, True]


def test_each_detection_takes_its_best_overlapping_truth() -> None:
    # det1 overlaps gt1 at 0.54 and gt2 at 1.0; det2 overlaps gt1 at 0.67 and gt2 at 0.33.
    # Taking the best free box gives det1→gt2, det2→gt1 (both correct); taking the first box above
    # the threshold would give det1→gt1 and leave det2 with gt2 at 0.33 (wrong).
    gt = truth([[0, 0, 10, 10], [3, 0, 13, 10]], [0, 0])
    assert match_image(
        gt, dets([([3, 0, 13, 10], 0.9, 0), ([-2, 0, 8, 10], 0.8, 0)]), 0.5
    ).tolist() == [True, True]


def test_match_detections_flattens_and_normalizes_boxes() -> None:
    m = match_detections(
        [truth([[0, 0, 100, 50]], [0], 200, 100), truth([], [], 200, 100)],
        [dets([([0, 0, 100, 50], 0.9, 0)]), ImageDetections()],
        0.5,
    )
    assert len(m) == 1 and m.correct.tolist() == [True]
    assert m.boxes[0].tolist() == pytest.approx([0.25, 0.25, 0.5, 0.5])  # cx, cy, w, h of the image


def test_nothing_to_match() -> None:
    assert len(match_detections([], [], 0.5)) == 0
    assert match_image(truth([], []), dets([([0, 0, 1, 1], 0.5, 0)]), 0.5).tolist() == [False]
    assert match_image(truth([[0, 0, 1, 1]], [0]), ImageDetections(), 0.5).dtype == np.bool_
