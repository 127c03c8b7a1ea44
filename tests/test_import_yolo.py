"""YOLO importer: label paths from image paths, border boxes valid, seg lines, own manifest kept, bad lines refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from import_helpers import (
    assert_boxes,
    assert_refused,
    check_passes,
    classes,
    manifest,
    run,
    write_image,
)


def yolo_folder(root: Path, extra_line: str | None = None) -> Path:
    write_image(root / "images/train/a.png", 64, 48, seed=1)
    write_image(root / "images/val/b.jpg", 50, 40, seed=2)
    write_image(root / "images/val/empty.png", 40, 30, seed=3)
    write_image(root / "images/pool/p.png", 40, 30, seed=4)
    (root / "classes.txt").write_text("cat\ndog\n")
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/val").mkdir(parents=True)
    # whole image (touches 0 and 1 on both axes), a corner box, and a box against the right edge
    (root / "labels/train/a.txt").write_text(
        "0 0.5 0.5 1.0 1.0\n1 0.125 0.25 0.25 0.5\n0 0.9375 0.5 0.125 0.25\n"
        + (extra_line + "\n" if extra_line else "")
    )
    # a YOLO-seg triangle: box = its extent
    (root / "labels/val/b.txt").write_text("1 0.1 0.2 0.5 0.2 0.3 0.9\n")
    (root / "manifest.jsonl").write_text(
        json.dumps(
            {
                "image": "images/train/a.png",
                "driver_id": "d7",
                "vehicle_id": "v7",
                "stream": "cctv",
                "scenario": "night",
                "road_type": "street",
                "custom": 3,
            }
        )
        + "\n"
        + json.dumps({"image": "images/pool/p.png", "labelled": False})
        + "\n"
    )
    return root


def test_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "yolo",
        yolo_folder(tmp_path / "src"),
        "--out",
        out,
        "--defaults",
        "stream=stills,scenario=day,road_type=campus",
    )
    assert result.exit_code == 0, result.output
    assert classes(out) == ["cat", "dog"]
    assert_boxes(
        out,
        "images/train/a.png",
        [("cat", (0, 0, 64, 48)), ("dog", (0, 0, 16, 24)), ("cat", (56, 18, 8, 12))],
    )
    assert_boxes(out, "images/val/b.jpg", [("dog", (5, 8, 20, 28))])
    assert_boxes(out, "images/val/empty.png", [])
    m = manifest(out)
    assert sorted(m) == [
        "images/train/a.png",
        "images/val/b.jpg",
        "images/val/empty.png",
    ]  # pool left out
    assert (m["images/train/a.png"]["driver_id"], m["images/train/a.png"]["custom"]) == ("d7", 3)
    assert m["images/val/b.jpg"]["stream"] == "stills"
    assert "1 × unlabelled image" in result.output
    seg = (out / "segments/val/b.txt").read_text().split()
    assert [float(v) for v in seg[1:]] == pytest.approx([0.1, 0.2, 0.5, 0.2, 0.3, 0.9])
    check_passes(out)


@pytest.mark.parametrize(
    "line, fragments",
    [
        ("2 0.5 0.5 0.1 0.1", ["a.txt:4", "[class]", "class id 2 is not one of 0…1"]),
        ("0 0.5 0.5 0.1", ["a.txt:4", "[fields]", "4 fields"]),
        ("0 0.5 0.5 -0.1 0.1", ["a.txt:4", "[box]", "negative size"]),
        ("0 0.95 0.5 0.2 0.1", ["a.txt:4", "[box]", "sticks out of the 64x48 image by 3.2 px"]),
        ("0 1.2 0.5 0.2 0.1", ["a.txt:4", "[box]", "lies outside the 64x48 image"]),
        ("0 0.5 0.5 0.1 abc", ["a.txt:4", "[h]", "'abc' is not a number"]),
    ],
)
def test_bad_label_lines_refused(tmp_path: Path, line: str, fragments: list[str]) -> None:
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "yolo", yolo_folder(tmp_path / "src", line), "--out", out),
        out,
        *fragments,
    )


def test_clip_lets_overhang_through(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "yolo",
        yolo_folder(tmp_path / "src", "0 1.0 0.5 0.25 0.25"),
        "--out",
        out,
        "--clip",
    )
    assert result.exit_code == 0, result.output
    assert_boxes(
        out,
        "images/train/a.png",
        [
            ("cat", (0, 0, 64, 48)),
            ("dog", (0, 0, 16, 24)),
            ("cat", (56, 18, 8, 12)),
            ("cat", (56, 18, 8, 12)),
        ],
    )
