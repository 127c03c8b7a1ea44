"""The pool's order: each scoring function on hand-made detections (pure), and the params' checks."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from tests.contract.module_imports import REPO

from vigil.detection.types import ImageDetections
from vigil.errors import VigilError
from vigil.params import load_section
from vigil.queue.params import QueueParams
from vigil.queue.scoring import (
    agreement,
    disagreement_score,
    low_confidence_score,
    random_scores,
    rank,
    uncertainty,
)


def dets(*rows: tuple[float, float, float, float, float, int]) -> ImageDetections:
    """(x1, y1, x2, y2, score, class) rows."""
    array = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return ImageDetections(array[:, :4], array[:, 4], array[:, 5].astype(int))


def test_uncertainty_peaks_at_the_centre_and_falls_to_the_far_end() -> None:
    assert uncertainty(np.array([0.5, 0.0, 1.0, 0.75]), 0.5).tolist() == [1.0, 0.0, 0.0, 0.5]
    raw = uncertainty(np.array([0.25, 1.0, 0.0]), 0.25)  # a raw score: centred on the threshold
    assert raw[0] == 1.0 and raw[1] == 0.0 and raw[2] == pytest.approx(2 / 3)


def test_low_confidence_puts_the_coin_flip_first() -> None:
    images = ["images/a.jpg", "images/b.jpg", "images/c.jpg", "images/d.jpg"]
    scores = [
        low_confidence_score(np.array([0.97, 0.03]), 0.5),  # sure both ways
        low_confidence_score(np.array([0.99, 0.52]), 0.5),  # one box is a coin flip
        low_confidence_score(np.array([]), 0.5),  # nothing detected
        low_confidence_score(np.array([0.7]), 0.5),
    ]
    assert scores[2] == 0.0
    assert [images[i] for i in rank(images, scores)] == [
        "images/b.jpg",
        "images/d.jpg",
        "images/a.jpg",
        "images/c.jpg",
    ]


def test_disagreement_counts_unmatched_boxes_of_either_model() -> None:
    teacher = dets((0, 0, 10, 10, 0.9, 0), (20, 20, 30, 30, 0.8, 1))
    assert disagreement_score(teacher, teacher, 0.5) == 0.0
    one_missed = dets((0, 0, 10, 10, 0.6, 0))
    assert agreement(teacher, one_missed, 0.5) == pytest.approx(2 / 3)
    wrong_class = dets((0, 0, 10, 10, 0.9, 1), (20, 20, 30, 30, 0.8, 0))
    assert disagreement_score(teacher, wrong_class, 0.5) == 1.0
    shifted = dets((5, 0, 15, 10, 0.9, 0), (20, 20, 30, 30, 0.8, 1))  # IoU 1/3 for the first
    assert disagreement_score(teacher, shifted, 0.5) == pytest.approx(0.5)
    assert disagreement_score(teacher, shifted, 0.3) == 0.0
    assert disagreement_score(ImageDetections(), ImageDetections(), 0.5) == 0.0
    assert disagreement_score(ImageDetections(), one_missed, 0.5) == 1.0
    images = ["images/same.jpg", "images/half.jpg", "images/none.jpg"]
    scores = [disagreement_score(teacher, s, 0.5) for s in (teacher, one_missed, wrong_class)]
    assert [images[i] for i in rank(images, scores)] == [
        "images/none.jpg",
        "images/half.jpg",
        "images/same.jpg",
    ]


def test_random_is_seeded_and_ties_go_in_path_order() -> None:
    images = [f"images/{i}.jpg" for i in range(20)]
    assert random_scores(images, 0) == random_scores(images, 0)
    assert rank(images, random_scores(images, 0)) != rank(images, random_scores(images, 1))
    assert rank(["images/b", "images/a", "images/c"], [0.5, 0.5, 0.9]) == [2, 1, 0]
    with pytest.raises(ValueError):
        rank(images, [0.0])


def test_the_shipped_queue_section_loads() -> None:
    params = load_section(REPO / "params.yaml", "queue", QueueParams)
    assert params.method in ("low_confidence", "disagreement", "random")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"method": "entropy"}, "method"),
        ({"top": 0}, "top"),
        ({"conf": 1.5}, "conf"),
        ({"iou": 0.0}, "iou"),
        ({"crop_margin": -0.1}, "crop_margin"),
    ],
)
def test_bad_queue_params_are_refused_by_name(change: dict[str, Any], field: str) -> None:
    params = load_section(REPO / "params.yaml", "queue", QueueParams)
    with pytest.raises(VigilError) as info:
        dataclasses.replace(params, **change)
    assert info.value.field == field


def test_the_calibration_gives_the_shown_scores_and_the_deployed_boxes() -> None:
    from pathlib import Path

    from vigil.queue.rank import Models, guesses
    from vigil.release.mapping import check_mapping

    mapping = {
        "schema": "vigil.calibration/2",
        "features": [],
        "keep": {"score": "raw", "threshold": 0.25},
        "logit_eps": 1e-6,
        "global": {"x": [0.0, 1.0], "y": [0.0, 0.5]},  # the model is overconfident by half
        "classes": {},
    }
    check_mapping(mapping)
    models = Models(Path("s.pt"), None, mapping, 0.25, 0.7, 100)
    found = guesses(dets((0, 0, 10, 10, 0.9, 0), (0, 0, 5, 5, 0.2, 1)), (64, 48), models)
    np.testing.assert_allclose(found.shown.scores, [0.45, 0.1])
    assert found.deployed.tolist() == [True, False]
    assert low_confidence_score(found.shown.scores, 0.5) == pytest.approx(0.9)
    raw = guesses(found.raw, (64, 48), Models(Path("s.pt"), None, None, 0.25, 0.7, 100))
    assert raw.shown.scores.tolist() == [0.9, 0.2] and raw.deployed.tolist() == [True, False]
