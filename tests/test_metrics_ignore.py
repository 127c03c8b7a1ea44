"""Ignore regions (VisDrone's ignored regions, COCO crowds) and dense images in scoring.

The fixture: one true box, and a detector that is right about it but also fires, with a higher
score, inside a region the annotators marked as ignored. Without the region that detection is a
false positive (AP50 0.5, count off by one, a background row in the confusion matrix); with it, it
is neither right nor wrong (AP50 1.0, exact count).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.detection.types import ANY_CLASS, ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.metrics.coco import evaluate_coco
from vigil.metrics.counts import count_error
from vigil.metrics.curves import confusion_rows
from vigil.metrics.image_errors import image_errors
from vigil.metrics.matching import drop_ignored, match_detections
from vigil.metrics.truth import load_truth

NAMES = ["car", "person"]
TRUE = [20.0, 20.0, 60.0, 60.0]
REGION = [200.0, 100.0, 300.0, 200.0]  # a crowd of parked cars nobody boxed
IN_REGION = [210.0, 110.0, 250.0, 150.0]


def truth(ignore: list[list[float]], ignore_classes: list[int]) -> ImageTruth:
    return ImageTruth("a.jpg", 320, 240, [TRUE], [0], {}, ignore, ignore_classes)


DETS = ImageDetections([IN_REGION, TRUE], [0.95, 0.9], [0, 0])


def test_a_detection_in_an_ignore_region_is_neither_tp_nor_fp() -> None:
    before = evaluate_coco([truth([], [])], [DETS], NAMES).metrics
    after = evaluate_coco([truth([REGION], [ANY_CLASS])], [DETS], NAMES).metrics
    assert before["map50"] == pytest.approx(0.5, abs=0.01)  # the top-scored detection is wrong
    assert after["map50"] == 1.0 and after["map50_95"] == 1.0
    assert after["boxes"] == 1  # a region is not a box to find
    assert after["recall"] == 1.0


def test_a_region_for_another_class_leaves_the_detection_a_false_positive() -> None:
    person_only = truth([REGION], [NAMES.index("person")])
    assert evaluate_coco([person_only], [DETS], NAMES).metrics["map50"] == pytest.approx(
        0.5, abs=0.01
    )
    assert len(drop_ignored(person_only, DETS, 0.5).scores) == 2
    car_only = truth([REGION], [NAMES.index("car")])
    assert evaluate_coco([car_only], [DETS], NAMES).metrics["map50"] == 1.0


def test_a_detection_half_outside_the_region_still_counts() -> None:
    straddling = ImageDetections([[170.0, 110.0, 250.0, 150.0], TRUE], [0.95, 0.9], [0, 0])
    ignored = truth([REGION], [ANY_CLASS])  # IoA of the straddling box: 50 / 80 wide … 0.625
    assert len(drop_ignored(ignored, straddling, 0.5).scores) == 1
    assert len(drop_ignored(ignored, straddling, 0.7).scores) == 2


def test_counts_errors_confusion_and_matching_leave_it_out() -> None:
    plain, ignored = truth([], []), truth([REGION], [ANY_CLASS])
    assert count_error([plain], [DETS], 2, conf=0.25).mae == 0.5  # car: 2 found, 1 true
    assert count_error([ignored], [DETS], 2, conf=0.25).mae == 0.0
    assert image_errors(plain, DETS, conf=0.25, iou=0.5).fp == 1
    assert image_errors(ignored, DETS, conf=0.25, iou=0.5).fp == 0
    rows = confusion_rows([ignored], [DETS], NAMES, conf=0.25, iou=0.5)
    assert rows == [{"actual": "car", "predicted": "car"}]
    matched = match_detections([ignored], [DETS], 0.5)
    assert len(matched) == 1 and matched.correct.all()
    assert len(match_detections([plain], [DETS], 0.5)) == 2


def test_a_true_box_inside_a_region_is_still_found() -> None:
    """A region over a labelled object never takes away its true positive."""
    inside = ImageTruth("a.jpg", 320, 240, [IN_REGION], [0], {}, [REGION], [ANY_CLASS])
    dets = ImageDetections([IN_REGION], [0.9], [0])
    assert len(drop_ignored(inside, dets, 0.5).scores) == 1
    assert evaluate_coco([inside], [dets], NAMES).metrics["map50"] == 1.0


def _dataset(root: Path, ignore: object) -> None:
    (root / "labels").mkdir(parents=True)
    (root / "labels/a.txt").write_text("0 0.125 0.166667 0.125 0.166667\n")
    (root / "classes.txt").write_text("car\nperson\n")
    line = {"image": "images/a.jpg", "width": 320, "height": 240, "ignore": ignore}
    (root / "manifest.jsonl").write_text(json.dumps(line) + "\n")


def test_the_manifest_ignore_list_becomes_regions_in_pixels(tmp_path: Path) -> None:
    _dataset(
        tmp_path,
        [
            {"box": [0.78125, 0.625, 0.3125, 0.41667], "reason": "visdrone ignored region"},
            {"box": [0.5, 0.5, 0.1, 0.1], "reason": "iscrowd", "class": "person"},
            {"box": [0.1, 0.1, 0.1, 0.1], "reason": "visdrone score 0", "class": "tricycle"},
        ],
    )
    (t,) = load_truth(tmp_path, ["images/a.jpg"])
    np.testing.assert_allclose(t.ignore[0], REGION, atol=0.01)
    assert t.ignore_classes.tolist() == [ANY_CLASS, 1, ANY_CLASS]  # a class not in classes.txt: all


@pytest.mark.parametrize("bad", ["nope", [{"box": [0.5, 0.5, 0.1]}], [{"box": [0.5, True, 1, 1]}]])
def test_a_broken_ignore_entry_is_one_clear_error(tmp_path: Path, bad: object) -> None:
    _dataset(tmp_path, bad)
    with pytest.raises(VigilError) as caught:
        load_truth(tmp_path, ["images/a.jpg"])
    assert "images/a.jpg" in str(caught.value) and "ignore" in str(caught.value)


def test_a_dense_image_is_scored_whole_when_max_det_allows() -> None:
    """150 objects, 150 perfect detections: COCO's fixed 100 would miss a third of them."""
    boxes = [
        [x * 20.0, y * 20.0, x * 20.0 + 15, y * 20.0 + 15] for y in range(10) for x in range(15)
    ]
    t = [ImageTruth("dense.jpg", 320, 240, boxes, [0] * 150)]
    d = [ImageDetections(boxes, np.linspace(0.99, 0.5, 150), [0] * 150)]
    capped = evaluate_coco(t, d, NAMES).metrics
    whole = evaluate_coco(t, d, NAMES, max_det=150).metrics
    assert capped["recall"] == pytest.approx(100 / 150, abs=1e-3)
    assert whole["recall"] == 1.0 and whole["map50_95"] == 1.0
