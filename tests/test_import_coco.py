"""COCO importer: arbitrary category ids, boxes / polygons / RLE, crowd, mode detection, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from import_helpers import (
    assert_boxes,
    assert_refused,
    check_passes,
    classes,
    manifest,
    run,
    write_image,
)

POLY = [30.5, 10.25, 55.75, 12.5, 50.0, 40.5, 33.0, 35.0]  # extent x 30.5…55.75, y 10.25…40.5
PARTS = [[2, 2, 10, 2, 10, 10, 2, 10], [60, 40, 70, 40, 70, 50, 60, 50]]  # extent 2…70, 2…50


def rle(height: int, width: int, rows: slice, cols: slice) -> dict[str, Any]:
    m = np.zeros((height, width), dtype=np.uint8, order="F")
    m[rows, cols] = 1
    out = mask_utils.encode(m)
    return {"size": out["size"], "counts": out["counts"].decode("ascii")}


def coco(tmp: Path, annotations: list[dict[str, Any]] | None = None, **changes: Any) -> Path:
    write_image(tmp / "imgs/a.jpg", 64, 48, seed=1)
    write_image(tmp / "imgs/sub/b.png", 80, 60, seed=2)
    write_image(tmp / "imgs/c.png", 50, 40, seed=3)
    data: dict[str, Any] = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "sub/b.png", "width": 80, "height": 60},
            {"id": 7, "file_name": "c.png"},
        ],
        "categories": [
            {"id": 3, "name": "car"},
            {"id": 1, "name": "person"},
            {"id": 11, "name": "dog"},
        ],
        "annotations": annotations
        if annotations is not None
        else [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [5.2, 6.3, 20.5, 15.1]},
            {"id": 11, "image_id": 1, "category_id": 3, "segmentation": [POLY]},
            {
                "id": 12,
                "image_id": 2,
                "category_id": 11,
                "segmentation": rle(60, 80, slice(10, 30), slice(20, 50)),
            },
            {"id": 13, "image_id": 2, "category_id": 1, "bbox": [0, 0, 80, 60], "area": 123.0},
            {
                "id": 14,
                "image_id": 2,
                "category_id": 1,
                "iscrowd": 1,
                "segmentation": rle(60, 80, slice(40, 60), slice(0, 10)),
            },
            {"id": 15, "image_id": 2, "category_id": 3, "segmentation": PARTS},
        ],
    }
    data.update(changes)
    path = tmp / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_round_trip_boxes_masks_crowd(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "coco",
        coco(tmp_path),
        "--images",
        tmp_path / "imgs",
        "--out",
        out,
        "--defaults",
        "stream=stills,scenario=day,road_type=campus",
    )
    assert result.exit_code == 0, result.output
    assert classes(out) == ["person", "car", "dog"]  # categories sorted by id: 1, 3, 11
    ext = (POLY[0], POLY[1], POLY[2] - POLY[0], POLY[5] - POLY[1])
    assert_boxes(out, "images/a.jpg", [("person", (5.2, 6.3, 20.5, 15.1)), ("car", ext)])
    assert_boxes(
        out,
        "images/sub/b.png",
        [("dog", (20, 10, 30, 20)), ("person", (0, 0, 80, 60)), ("car", (2, 2, 68, 48))],
    )
    assert_boxes(out, "images/c.png", [])
    m = manifest(out)
    assert len(m) == 3
    a, b = m["images/a.jpg"], m["images/sub/b.png"]
    assert a["objects"]["id"] == [10, 11]
    assert a["objects"]["area"][0] == pytest.approx(20.5 * 15.1, abs=1e-3)  # box only: w*h
    assert b["objects"]["area"][:2] == [600.0, 123.0]  # RLE area from the mask; given area kept
    assert [(r["reason"], r["id"], r["class"], r["area"]) for r in b["ignore"]] == [
        ("iscrowd", 14, "person", 200.0)
    ]
    assert b["ignore"][0]["box"] == pytest.approx([5 / 80, 50 / 60, 10 / 80, 20 / 60], abs=1e-6)
    assert (a["driver_id"], a["stream"], m["images/c.png"]["width"]) == ("a", "stills", 50)
    mode = json.loads((out / ".mode_config.json").read_text())
    assert (
        mode["mode"] == "both"
        and mode["task"] == "segment"
        and mode["classes"] == {"0": "person", "1": "car", "2": "dog"}
    )
    seg = (out / "segments/sub/b.txt").read_text().splitlines()
    assert (
        len(seg) == 3 and seg[1].split()[0] == "0" and len(seg[1].split()) == 9
    )  # box → rectangle polygon
    assert "dog: 1" in result.output and "iscrowd" not in (out / "labels/sub/b.txt").read_text()
    check_passes(out)


def test_mask_only_gives_exact_polygon_extents_and_mode(tmp_path: Path) -> None:
    anns = [
        {"id": 1, "image_id": 1, "category_id": 3, "segmentation": [POLY]},
        {"id": 2, "image_id": 2, "category_id": 1, "segmentation": PARTS},
    ]
    out = tmp_path / "out"
    assert (
        run(
            "data",
            "import",
            "coco",
            coco(tmp_path, anns),
            "--images",
            tmp_path / "imgs",
            "--out",
            out,
        ).exit_code
        == 0
    )
    for rel, w, h, poly in (("images/a.jpg", 64, 48, [POLY]), ("images/sub/b.png", 80, 60, PARTS)):
        xs = [v for p in poly for v in p[0::2]]
        ys = [v for p in poly for v in p[1::2]]
        cls, cx, cy, bw, bh = (out / f"labels/{rel[7:].rsplit('.', 1)[0]}.txt").read_text().split()
        assert float(cx) * w - float(bw) * w / 2 == pytest.approx(min(xs), abs=1e-3)
        assert float(cx) * w + float(bw) * w / 2 == pytest.approx(max(xs), abs=1e-3)
        assert float(cy) * h - float(bh) * h / 2 == pytest.approx(min(ys), abs=1e-3)
        assert float(cy) * h + float(bh) * h / 2 == pytest.approx(max(ys), abs=1e-3)
    assert json.loads((out / ".mode_config.json").read_text())["mode"] == "masks"


def test_boxes_only_mode_and_class_map(tmp_path: Path) -> None:
    anns = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 10, 10]},
        {"id": 2, "image_id": 1, "category_id": 11, "bbox": [20, 20, 10, 10]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10]},
        {"id": 4, "image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 10]},
    ]  # zero width: skipped, counted
    cmap = tmp_path / "map.yaml"
    cmap.write_text("car: vehicle\n'11': null\nperson: human\n")
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "coco",
        coco(tmp_path, anns),
        "--images",
        tmp_path / "imgs",
        "--out",
        out,
        "--class-map",
        cmap,
    )
    assert result.exit_code == 0, result.output
    assert classes(out) == ["vehicle", "human"]
    assert_boxes(out, "images/a.jpg", [("vehicle", (1, 1, 10, 10))])
    assert "class 'dog' dropped by the class map" in result.output
    assert (
        "1 × box of zero width or height (not labelled)  (e.g. " in result.output
        and "annotation id=4" in result.output
    )
    assert json.loads((out / ".mode_config.json").read_text())["mode"] == "boxes"
    assert not (out / "segments").exists()


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"annotations": None}, ["instances.json", "[annotations]", "not COCO"]),
        (
            {"annotations": [{"id": 5, "image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5]}]},
            ["instances.json", "annotation id=5 category_id", "unknown category id 99"],
        ),
        (
            {"annotations": [{"id": 6, "image_id": 1, "category_id": 1, "bbox": [10, 10, -4, 5]}]},
            ["instances.json", "annotation id=6 bbox", "negative size"],
        ),
        (
            {"annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [50, 10, 30, 5]}]},
            ["instances.json", "annotation id=7 bbox", "sticks out of the 64x48 image", "--clip"],
        ),
        (
            {"annotations": [{"id": 8, "image_id": 1, "category_id": 1, "bbox": [70, 10, 5, 5]}]},
            ["annotation id=8 bbox", "outside the 64x48 image"],
        ),
        (
            {"images": [{"id": 1, "file_name": "missing.jpg"}]},
            ["image id=1 file_name", "missing.jpg does not exist"],
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    tmp_path: Path, change: dict[str, Any], fragments: list[str]
) -> None:
    path = coco(tmp_path)
    data = json.loads(path.read_text())
    data.update(change)
    if change.get("annotations", 0) is None:
        del data["annotations"]
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "coco", path, "--images", tmp_path / "imgs", "--out", out),
        out,
        *fragments,
    )


def test_json_that_is_a_list_is_not_coco(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    assert_refused(
        run("data", "import", "coco", path, "--images", tmp_path / "imgs", "--out", tmp_path / "o"),
        tmp_path / "o",
        "x.json",
        "not a COCO object",
    )


def test_metadata_side_file_and_out_not_empty(tmp_path: Path) -> None:
    side = tmp_path / "meta.csv"
    side.write_text(
        "image,driver_id,vehicle_id,stream,scenario,road_type\n"
        "a.jpg,d1,v1,cctv,night,street\nsub/b.png,d2,v2,cctv,day,campus\n"
    )
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "coco",
        coco(tmp_path),
        "--images",
        tmp_path / "imgs",
        "--out",
        out,
        "--metadata",
        side,
    )
    assert result.exit_code == 0, result.output
    m = manifest(out)
    assert (m["images/a.jpg"]["driver_id"], m["images/a.jpg"]["scenario"]) == ("d1", "night")
    assert m["images/c.png"]["stream"] == "unknown"  # no row → default, and the summary says so
    assert "stream ['unknown'] (allowed ['cctv', 'stills'])" in result.output
    again = run(
        "data",
        "import",
        "coco",
        tmp_path / "instances.json",
        "--images",
        tmp_path / "imgs",
        "--out",
        out,
    )
    assert again.exit_code == 2 and "--out is not empty" in again.output
