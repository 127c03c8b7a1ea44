"""The error gallery: the worst test images per model, drawn and indexed, with per-image counts."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from conftest import CLASSES, make_dataset
from repo_params import raw, section
from vigil.detection.types import ImageDetections
from vigil.errors import VigilError
from vigil.metrics.image_errors import image_errors
from vigil.metrics.params import EvaluateParams
from vigil.metrics.truth import load_truth
from vigil.models.evaluate import ModelSpec, run_evaluate
from vigil.models.gallery import error_table, flat_name, write_gallery


def test_worst_images_are_drawn_named_by_kind_and_rank(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", n=4)
    images = [f"images/{i:03d}.png" for i in range(4)]
    truths = load_truth(root, images)
    dets = [
        ImageDetections(truths[0].boxes, [0.9, 0.8], truths[0].classes),  # perfect
        ImageDetections(),  # both missed
        ImageDetections([[1, 1, 5, 5], [50, 30, 60, 40]], [0.9, 0.5], [0, 1]),  # 2 false, 2 missed
        ImageDetections(truths[3].boxes[:1], [0.7], truths[3].classes[:1]),  # 1 missed
    ]
    errors = {
        "student": [
            image_errors(t, d, conf=0.25, iou=0.5) for t, d in zip(truths, dets, strict=True)
        ]
    }
    index = write_gallery(tmp_path / "gallery", root, errors, {"student": 2}, CLASSES)
    names = sorted(p.name for p in (tmp_path / "gallery" / "student").iterdir())
    assert names == ["false_01_002.jpg", "missed_01_002.jpg", "missed_02_001.jpg"]
    assert [(e["kind"], e["image"], e["missed"], e["fp"]) for e in index["student"]] == [
        ("missed", "images/002.png", 2, 2),
        ("missed", "images/001.png", 2, 0),
        ("false", "images/002.png", 2, 2),
    ]
    drawn = cv2.imread(str(tmp_path / "gallery" / "student" / "missed_01_002.jpg"))
    assert drawn.shape[1] >= 480  # enlarged from 64 px so the labels read
    table = error_table(errors, index, conf=0.25, iou=0.5)
    assert table["models"]["student"]["images/000.png"] == {"tp": 2, "fp": 0, "missed": 0}
    assert json.loads(json.dumps(table)) == table
    assert flat_name("images/lab/000214.jpg") == "lab__000214"


def test_gallery_counts_are_checked() -> None:
    with pytest.raises(VigilError, match=r"gallery\.student"):
        section("evaluate", EvaluateParams, gallery={"student": -1})
    with pytest.raises(VigilError, match=r"gallery\.student"):
        section("evaluate", EvaluateParams, gallery={"student": True})
    assert set(raw("evaluate")["gallery"]) == {"student", "teacher"}


def test_a_gallery_model_that_is_not_evaluated_is_refused_before_any_work(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", n=2)
    split = tmp_path / "test.txt"
    split.write_text("images/000.png\n")
    with pytest.raises(VigilError, match=r"evaluate\.gallery\.ghost"):
        run_evaluate(
            root,
            split,
            [ModelSpec("teacher", tmp_path / "absent.pt")],
            metrics=tmp_path / "m.json",
            plots=tmp_path / "plots",
            params=section("evaluate", EvaluateParams, gallery={"ghost": 2}),
            work_dir=tmp_path / "work",
        )
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "plots").exists()
