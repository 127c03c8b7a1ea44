"""Matching detections to ground truth, and the detections file format (read, write, refuse)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.release.detections import (ImageTruth, image_detections, load_truth, read_detections, write_detections)
from vigil.release.matching import box_iou, match_detections, match_image


def truth(boxes: list[list[float]], classes: list[int]) -> ImageTruth:
    return ImageTruth(np.array(boxes, dtype=float).reshape(-1, 4), np.array(classes, dtype=np.int64))


def test_box_iou_by_hand() -> None:
    # [0,0,10,10] vs [5,0,15,10]: overlap 5·10 = 50, union 100 + 100 − 50 = 150 → 1/3
    iou = box_iou(np.array([[0, 0, 10, 10.0]]), np.array([[5, 0, 15, 10.0], [20, 20, 30, 30], [0, 0, 0, 0]]))
    assert iou[0].tolist() == pytest.approx([1 / 3, 0.0, 0.0])


def test_greedy_by_score_one_truth_per_detection() -> None:
    gt = truth([[0, 0, 10, 10]], [0])
    # the lower-scored detection overlaps better, but the higher-scored one takes the box first
    dets = image_detections("images/a.jpg", 100, 100, [([1, 0, 11, 10], 0.6, 0), ([0, 0, 10, 10], 0.4, 0)])
    assert match_image(dets, gt, 0.5).tolist() == [True, False]


def test_class_and_iou_threshold() -> None:
    gt = truth([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 1])
    dets = image_detections("images/a.jpg", 100, 100, [
        ([0, 0, 10, 10], 0.9, 1),        # right place, wrong class
        ([5, 0, 15, 10], 0.8, 0),        # right class, IoU 1/3
        ([50, 50, 60, 60], 0.7, 1)])     # correct
    assert match_image(dets, gt, 0.5).tolist() == [False, False, True]
    assert match_image(dets, gt, 0.3).tolist() == [False, True, True]


def test_each_detection_takes_its_best_overlapping_truth() -> None:
    # det1 overlaps gt1 at 0.54 and gt2 at 1.0; det2 overlaps gt1 at 0.67 and gt2 at 0.33.
    # Taking the best free box gives det1→gt2, det2→gt1 (both correct); taking the first box above
    # the threshold would give det1→gt1 and leave det2 with gt2 at 0.33 (wrong).
    gt = truth([[0, 0, 10, 10], [3, 0, 13, 10]], [0, 0])
    dets = image_detections("images/a.jpg", 100, 100, [([3, 0, 13, 10], 0.9, 0), ([-2, 0, 8, 10], 0.8, 0)])
    assert match_image(dets, gt, 0.5).tolist() == [True, True]


def test_match_detections_flattens_and_normalizes_boxes() -> None:
    a = image_detections("images/a.jpg", 200, 100, [([0, 0, 100, 50], 0.9, 0)])
    b = image_detections("images/b.jpg", 200, 100, [])
    m = match_detections([a, b], [truth([[0, 0, 100, 50]], [0]), truth([], [])], 0.5)
    assert len(m) == 1 and m.correct.tolist() == [True]
    assert m.boxes[0].tolist() == pytest.approx([0.25, 0.25, 0.5, 0.5])  # cx, cy, w, h of the image


def test_detections_file_round_trip_and_truth(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    (data / "labels" / "lab").mkdir(parents=True)
    (data / "labels" / "lab" / "1.txt").write_text("2 0.5 0.5 0.5 0.5\n")
    images = [image_detections("images/lab/1.jpg", 320, 240, [([80, 60, 240, 180], 0.75, 2)]),
              image_detections("images/lab/2.jpg", 320, 240, [])]
    path = tmp_path / "det.json"
    write_detections(path, images, model="student")
    back = read_detections(path, {"images/lab/1.jpg", "images/lab/2.jpg"})
    assert [im.image for im in back] == ["images/lab/1.jpg", "images/lab/2.jpg"]
    assert back[0].boxes.tolist() == [[80, 60, 240, 180]] and back[0].scores.tolist() == [0.75]
    gt = load_truth(data, back[0])
    assert gt.boxes.tolist() == [[80, 60, 240, 180]] and gt.classes.tolist() == [2]
    assert len(load_truth(data, back[1]).classes) == 0  # no label file: no objects
    assert match_detections(back, [gt, load_truth(data, back[1])], 0.5).correct.tolist() == [True]


@pytest.mark.parametrize("entry, field", [
    ({"image": "images/a.jpg", "width": 10, "height": 10}, "images[0]"),
    ({"image": "images/a.jpg", "width": 10, "height": 10, "detections": [{"xyxy": [0, 0, 1], "score": 0.5, "class": 0}]},
     "images[0].detections[0].xyxy"),
    ({"image": "images/a.jpg", "width": 10, "height": 10, "detections": [{"xyxy": [0, 0, 1, 1], "score": 1.5, "class": 0}]},
     "images[0].detections[0].score"),
    ({"image": "images/a.jpg", "width": 10, "height": 10, "detections": [{"xyxy": [0, 0, 1, 1], "score": 0.5, "class": -1}]},
     "images[0].detections[0].class"),
])
def test_bad_detections_name_the_field(tmp_path: Path, entry: dict, field: str) -> None:
    path = tmp_path / "det.json"
    path.write_text(json.dumps({"images": [entry]}))
    with pytest.raises(VigilError) as err:
        read_detections(path)
    assert err.value.field == field and err.value.path == str(path)


def test_an_image_outside_the_split_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "det.json"
    write_detections(path, [image_detections("images/test_only.jpg", 10, 10, [])])
    with pytest.raises(VigilError, match="not in this split's list"):
        read_detections(path, {"images/val.jpg"})
