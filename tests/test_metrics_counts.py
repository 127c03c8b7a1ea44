"""Count error on a hand case: |detected - true| per image and class at the deployed confidence."""

from __future__ import annotations

import pytest

from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.counts import count_error

B = [0.0, 0.0, 10.0, 10.0]


def test_count_mae_on_a_hand_case() -> None:
    truths = [
        ImageTruth("a.jpg", 64, 48, [B, B, B], [0, 0, 1]),  # 2 of class 0, 1 of class 1
        ImageTruth("b.jpg", 64, 48),
    ]  # nothing
    detections = [
        ImageDetections(
            [B] * 4, [0.9, 0.3, 0.8, 0.1], [0, 1, 1, 0]
        ),  # above .25: one 0, two 1 (0.1 dropped)
        ImageDetections([B], [0.5], [1]),
    ]  # one 1 on an empty image
    err = count_error(truths, detections, n_classes=2, conf=0.25)
    # image a: class 0 |1-2| = 1, class 1 |2-1| = 1; image b: class 0 0, class 1 |1-0| = 1 → 3 / 4
    assert err.mae == pytest.approx(0.75)
    assert err.per_class == pytest.approx([0.5, 1.0])
    # totals: image a |3-3| = 0, image b |1-0| = 1
    assert err.total_mae == pytest.approx(0.5)


def test_the_threshold_is_inclusive_and_counts_can_be_perfect() -> None:
    truths = [ImageTruth("a.jpg", 64, 48, [B], [1])]
    assert count_error(truths, [ImageDetections([B], [0.25], [1])], 2, 0.25).mae == 0.0
    assert count_error(truths, [ImageDetections([B], [0.2499], [1])], 2, 0.25).mae == pytest.approx(
        0.5
    )


def test_no_images_gives_none() -> None:
    err = count_error([], [], 3, 0.25)
    assert err.mae is None and err.per_class == [None, None, None]
