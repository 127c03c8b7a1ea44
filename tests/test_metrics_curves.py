"""Confusion matrix (IoU-matched, background row and column) and PR-curve files on hand cases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.curves import (
    BACKGROUND,
    confusion_counts,
    confusion_rows,
    match_by_iou,
    mean_curve,
    write_confusion,
    write_pr_curves,
)

NAMES = ["cat", "dog", "bird"]
A, B, C = [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0], [50.0, 0.0, 60.0, 10.0]


def test_match_by_iou_is_greedy_one_to_one() -> None:
    ious = np.array([[0.9, 0.6], [0.8, 0.55]])
    # (0,0) first at 0.9; true 1 cannot take detection 0 again, takes detection 1 at 0.55
    assert match_by_iou(ious, 0.5) == [(0, 0), (1, 1)]
    assert match_by_iou(ious, 0.7) == [(0, 0)]
    assert match_by_iou(np.zeros((0, 3)), 0.5) == []


def test_confusion_on_a_hand_case() -> None:
    truths = [ImageTruth("a.jpg", 64, 48, [A, B, C], [0, 1, 2]), ImageTruth("b.jpg", 64, 48)]
    shifted_b = [22.0, 20.0, 42.0, 40.0]  # IoU 18*20 / (2*400 - 360) = 0.818 with B
    detections = [
        ImageDetections([A, shifted_b, [0, 30, 8, 38], C], [0.9, 0.8, 0.7, 0.1], [0, 2, 1, 2]),
        ImageDetections([A], [0.6], [1]),
    ]
    rows = confusion_rows(truths, detections, NAMES, conf=0.25, iou=0.5)
    # cat→cat; dog→bird (matched by IoU, class-agnostic); bird missed (its detection is below conf);
    # a dog on nothing in a.jpg and a dog on the blank b.jpg → background→dog twice
    assert rows == [
        {"actual": "cat", "predicted": "cat"},
        {"actual": "dog", "predicted": "bird"},
        {"actual": "bird", "predicted": BACKGROUND},
        {"actual": BACKGROUND, "predicted": "dog"},
        {"actual": BACKGROUND, "predicted": "dog"},
    ]
    matrix = confusion_counts(rows, NAMES)
    assert (
        matrix["cat"]["cat"] == 1 and matrix["dog"]["bird"] == 1 and matrix["bird"][BACKGROUND] == 1
    )
    assert matrix[BACKGROUND]["dog"] == 2 and matrix["dog"]["dog"] == 0
    assert sum(sum(r.values()) for r in matrix.values()) == 5


def test_a_box_below_the_iou_is_a_miss_and_a_false_positive() -> None:
    truths = [ImageTruth("a.jpg", 64, 48, [B], [1])]
    far = [31.0, 20.0, 51.0, 40.0]  # IoU 9*20 / (800 - 180) = 0.29
    rows = confusion_rows(truths, [ImageDetections([far], [0.9], [1])], NAMES, conf=0.25, iou=0.5)
    assert rows == [
        {"actual": "dog", "predicted": BACKGROUND},
        {"actual": BACKGROUND, "predicted": "dog"},
    ]


def test_confusion_file_is_what_dvcs_confusion_template_reads(tmp_path: Path) -> None:
    path = tmp_path / "m" / "confusion.json"
    write_confusion(path, [{"actual": "cat", "predicted": BACKGROUND}])
    assert json.loads(path.read_text()) == [{"actual": "cat", "predicted": "background"}]


def test_pr_curve_files_one_per_class_with_a_column_per_model(tmp_path: Path) -> None:
    recall = np.linspace(0, 1, 101)
    teacher = np.stack([np.ones(101), np.where(recall <= 0.5, 1.0, 0.0), -np.ones(101)])
    student = np.stack([np.full(101, 0.5), np.zeros(101), -np.ones(101)])
    written = write_pr_curves(
        tmp_path / "pr", recall, NAMES, {"teacher": teacher, "student": student}
    )
    assert written == ["cat.csv", "dog.csv"]  # no bird boxes: no curve
    rows = list(csv.DictReader((tmp_path / "pr" / "dog.csv").open()))
    assert len(rows) == 101 and rows[50] == {
        "recall": "0.50",
        "teacher": "1.000000",
        "student": "0.000000",
    }
    assert rows[51]["teacher"] == "0.000000"
    assert mean_curve(teacher)[0] == pytest.approx(1.0) and mean_curve(teacher)[
        100
    ] == pytest.approx(0.5)
    # the mean of the mean curve is mAP50: (1 + 51/101) / 2
    assert mean_curve(teacher).mean() == pytest.approx((1 + 51 / 101) / 2)
