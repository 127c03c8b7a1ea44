"""The detection core: one IoU, one YOLO ↔ xyxy conversion, one split-list rule, the detections file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.detection.boxes import box_area, box_iou, xyxy_to_yolo, yolo_to_xyxy
from vigil.detection.detections_file import detections_entry, read_detections, write_detections
from vigil.detection.split_lists import read_split_list
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.metrics.matching import match_detections
from vigil.metrics.truth import image_truth, load_truth


def test_box_iou_by_hand() -> None:
    # [0,0,10,10] vs [5,0,15,10]: overlap 5·10 = 50, union 100 + 100 − 50 = 150 → 1/3
    iou = box_iou(
        np.array([[0, 0, 10, 10.0]]), np.array([[5, 0, 15, 10.0], [20, 20, 30, 30], [0, 0, 0, 0]])
    )
    assert iou[0].tolist() == pytest.approx([1 / 3, 0.0, 0.0])
    assert box_iou([], [[0, 0, 1, 1]]).shape == (0, 1) and box_iou([[0, 0, 1, 1]], []).shape == (
        1,
        0,
    )
    assert box_area([[5, 5, 0, 0]]).tolist() == [0.0]  # an inverted box has no area


def test_yolo_and_xyxy_convert_both_ways() -> None:
    xyxy = yolo_to_xyxy([[0.5, 0.5, 0.5, 0.5]], 320, 240)
    assert xyxy.tolist() == [[80, 60, 240, 180]]
    assert xyxy_to_yolo(xyxy, 320, 240).tolist() == [[0.5, 0.5, 0.5, 0.5]]
    assert yolo_to_xyxy([], 10, 10).shape == (0, 4)


def test_records_keep_their_arrays_aligned() -> None:
    with pytest.raises(ValueError):
        ImageDetections([[0, 0, 1, 1]], [0.5, 0.6], [0])
    with pytest.raises(ValueError):
        ImageTruth("a.jpg", 10, 10, [[0, 0, 1, 1]], [])
    assert ImageDetections([[0, 0, 1, 1], [1, 1, 2, 2]], [0.2, 0.7], [0, 1]).above(
        0.5
    ).classes.tolist() == [1]


def test_split_lists_read_one_way(tmp_path: Path) -> None:
    path = tmp_path / "test.txt"
    path.write_text("# a comment\n./images/a b.jpg\n\nimages/lab/ü.png  \n")
    assert read_split_list(path) == ["images/a b.jpg", "images/lab/ü.png"]


@pytest.mark.parametrize(
    "content, line, what",
    [
        (b"images/a.jpg\nlabels/a.txt\n", 2, "not under images/"),
        (b"/images/a.jpg\n", 1, "not under images/"),
        (b"images/../../etc/passwd\n", 1, "not under images/"),
        (b"images/a.jpg\n./images/a.jpg\n", 2, "listed twice"),
        (b"images/\xff.jpg\n", None, "not valid UTF-8"),
    ],
)
def test_bad_split_lists_name_the_line(
    tmp_path: Path, content: bytes, line: int | None, what: str
) -> None:
    path = tmp_path / "val.txt"
    path.write_bytes(content)
    with pytest.raises(VigilError, match=what) as err:
        read_split_list(path)
    assert err.value.line == line and err.value.path == str(path)


def test_a_missing_split_list_says_which_stage_writes_it(tmp_path: Path) -> None:
    for path in (tmp_path / "absent.txt", tmp_path):  # a folder is not a list either
        with pytest.raises(VigilError, match="split list not found"):
            read_split_list(path)


def test_detections_file_round_trip_and_truth(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    (data / "labels" / "lab").mkdir(parents=True)
    (data / "labels" / "lab" / "1.txt").write_text("2 0.5 0.5 0.5 0.5\n")
    entries = [
        detections_entry("images/lab/1.jpg", 320, 240, [([80, 60, 240, 180], 0.75, 2)]),
        detections_entry("images/lab/2.jpg", 320, 240, []),
    ]
    path = tmp_path / "det.json"
    write_detections(path, entries, model="student")
    back = read_detections(path, {"images/lab/1.jpg", "images/lab/2.jpg"})
    assert [e.image for e in back] == ["images/lab/1.jpg", "images/lab/2.jpg"]
    assert back[0].detections.boxes.tolist() == [[80, 60, 240, 180]] and back[
        0
    ].detections.scores.tolist() == [0.75]
    truths = [image_truth(data, e.image, e.width, e.height) for e in back]
    assert truths[0].boxes.tolist() == [[80, 60, 240, 180]] and truths[0].classes.tolist() == [2]
    assert len(truths[1].classes) == 0  # no label file: no objects
    assert match_detections(truths, [e.detections for e in back], 0.5).correct.tolist() == [True]


@pytest.mark.parametrize(
    "entry, field",
    [
        ({"image": "images/a.jpg", "width": 10, "height": 10}, "images[0]"),
        (
            {"image": "images/a.jpg", "width": 10.5, "height": 10, "detections": []},
            "images[0].width",
        ),
        ({"image": "images/a.jpg", "width": 10, "height": 0, "detections": []}, "images[0].height"),
        (
            {
                "image": "images/a.jpg",
                "width": 10,
                "height": 10,
                "detections": [{"xyxy": [0, 0, 1], "score": 0.5, "class": 0}],
            },
            "images[0].detections[0].xyxy",
        ),
        (
            {
                "image": "images/a.jpg",
                "width": 10,
                "height": 10,
                "detections": [{"xyxy": [5, 0, 1, 1], "score": 0.5, "class": 0}],
            },
            "images[0].detections[0].xyxy",
        ),
        (
            {
                "image": "images/a.jpg",
                "width": 10,
                "height": 10,
                "detections": [{"xyxy": [0, 0, 1, 1], "score": 1.5, "class": 0}],
            },
            "images[0].detections[0].score",
        ),
        (
            {
                "image": "images/a.jpg",
                "width": 10,
                "height": 10,
                "detections": [{"xyxy": [0, 0, 1, 1], "score": 0.5, "class": -1}],
            },
            "images[0].detections[0].class",
        ),
    ],
)
def test_bad_detections_name_the_field(tmp_path: Path, entry: dict, field: str) -> None:
    path = tmp_path / "det.json"
    path.write_text(json.dumps({"images": [entry]}))
    with pytest.raises(VigilError) as err:
        read_detections(path)
    assert err.value.field == field and err.value.path == str(path)


@pytest.mark.parametrize(
    "content, what",
    [
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b'{"images": [', "not valid JSON"),
        (b"[" * 100000 + b"]" * 100000, "cannot read"),
        (b"[]", "expected an object"),
    ],
)
def test_unreadable_detections_files_are_one_error(
    tmp_path: Path, content: bytes, what: str
) -> None:
    path = tmp_path / "det.json"
    path.write_bytes(content)
    with pytest.raises(VigilError, match=what):
        read_detections(path)


def test_an_image_outside_the_split_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "det.json"
    write_detections(path, [detections_entry("images/test_only.jpg", 10, 10, [])])
    with pytest.raises(VigilError, match="not in this split's list"):
        read_detections(path, {"images/val.jpg"})


def test_truth_comes_framed_by_the_manifest(dataset: Path) -> None:
    truths = load_truth(dataset, ["images/001.png"])
    assert (truths[0].width, truths[0].height) == (64, 48) and truths[0].record[
        "vehicle_id"
    ] == "v0"
    assert len(truths[0].boxes) == 2 and (truths[0].boxes[:, 2] <= 64).all()
    with pytest.raises(VigilError, match="not in the manifest"):
        load_truth(dataset, ["images/nope.png"])


def test_truth_reads_a_missing_size_from_the_image_and_names_a_bad_one(dataset: Path) -> None:
    manifest = dataset / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    for line in lines[:2]:
        del line["width"], line["height"]
    lines[1].update(width=True, height=1)  # a bool is not a size: the header is read instead
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first, second = load_truth(dataset, ["images/000.png", "images/001.png"])
    assert (first.width, first.height) == (second.width, second.height) == (64, 48)
    (dataset / "images" / "000.png").write_bytes(b"not an image")
    with pytest.raises(VigilError, match="cannot read the image size") as err:
        load_truth(dataset, ["images/000.png"])
    assert err.value.path == str((dataset / "images" / "000.png").resolve())
