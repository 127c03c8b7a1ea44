"""Per-image TP / FP / misses: the matching rule of `match_image`, and the gallery's ranking."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.image_errors import image_errors, worst
from vigil.metrics.matching import match_image


def truth(image: str, boxes: list[list[float]], classes: list[int]) -> ImageTruth:
    return ImageTruth(image, 100, 100, np.array(boxes, dtype=float).reshape(-1, 4), classes)


def test_counts_follow_score_class_and_iou() -> None:
    t = truth("a.png", [[0, 0, 10, 10], [50, 50, 70, 70], [80, 80, 90, 90]], [0, 1, 0])
    d = ImageDetections(
        [[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 70, 70], [20, 20, 30, 30], [80, 80, 90, 90]],
        [0.9, 0.8, 0.7, 0.6, 0.1],
        [0, 0, 0, 1, 0],
    )
    e = image_errors(t, d, conf=0.25, iou=0.5)
    # the second box of class 0 finds its truth taken; class 1's truth has only a wrong-class guess;
    # the last detection is below conf and not counted at all
    assert e.counts() == {"tp": 1, "fp": 3, "missed": 2}
    assert e.correct.tolist() == [True, False, False, False] and e.found.tolist() == [
        True,
        False,
        False,
    ]
    assert len(e.detections.scores) == 4


def test_agrees_with_match_image_on_random_images() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(0, 6, size=2)
        xy = rng.uniform(0, 80, size=(n, 2))
        tb = np.hstack([xy, xy + rng.uniform(5, 20, size=(n, 2))])
        dxy = rng.uniform(0, 80, size=(m, 2))
        db = np.hstack([dxy, dxy + rng.uniform(5, 20, size=(m, 2))])
        t = ImageTruth("x", 100, 100, tb, rng.integers(0, 2, n))
        d = ImageDetections(db, rng.uniform(0, 1, m), rng.integers(0, 2, m))
        e = image_errors(t, d, conf=0.0, iou=0.3)
        assert e.correct.tolist() == match_image(t, d, 0.3).tolist()
        assert e.tp == e.found.sum()


def test_worst_ranks_by_kind_breaks_ties_and_leaves_out_clean_images() -> None:
    def errs(name: str, missed: int, false: int):
        t = truth(name, [[0, 0, 5, 5]] * missed, [0] * missed)
        d = ImageDetections([[90, 90, 99, 99]] * false, [0.9] * false, [1] * false)
        return image_errors(t, d, conf=0.25, iou=0.5)

    items = [errs("c", 2, 0), errs("a", 2, 1), errs("b", 0, 3), errs("d", 0, 0), errs("e", 1, 3)]
    assert [e.truth.image for e in worst(items, "missed", 5)] == ["a", "c", "e"]
    assert [e.truth.image for e in worst(items, "false", 2)] == ["e", "b"]
    assert worst(items, "missed", 0) == []
    with pytest.raises(ValueError):
        worst(items, "other", 1)
