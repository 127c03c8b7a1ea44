"""VisDrone importer: ignored regions and score 0 as VisDrone defines them, the drone team's class map, groups."""

from __future__ import annotations

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

SPLIT = "VisDrone2019-DET-train"
ANNOTATIONS = {  # x,y,w,h,score,class,truncation,occlusion
    "0000002_00005_d_0000014": [
        "10,12,20,16,1,1,0,0",
        "40,30,15,10,1,4,0,1",
        "0,0,8,6,0,0,0,0",
        "50,5,12,9,0,4,0,0",
        "60,40,10,10,1,3,0,0",
        "30,2,10,10,1,5,1,2,",
    ],
    "0000002_00448_d_0000015": ["1,1,78,58,1,6,0,0"],
    "9999938_00000_d_0000001": ["5,5,5,5,1,2,0,0", "20,20,10,10,1,11,0,0"],
}
DRONE_MAP = "pedestrian: person\npeople: person\n'4': car\nvan: truck\ntruck: truck\n'*': null\n"


def visdrone(root: Path, lines: dict[str, list[str]] = ANNOTATIONS) -> Path:
    for i, (stem, rows) in enumerate(lines.items()):
        write_image(root / SPLIT / "images" / f"{stem}.jpg", 80, 60, seed=i)
        (root / SPLIT / "annotations").mkdir(parents=True, exist_ok=True)
        (root / SPLIT / "annotations" / f"{stem}.txt").write_text("\n".join(rows) + "\n")
    return root


def test_round_trip_with_drone_class_map(tmp_path: Path) -> None:
    cmap = tmp_path / "drone.yaml"
    cmap.write_text(DRONE_MAP)
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "visdrone",
        visdrone(tmp_path / "vd"),
        "--class-map",
        cmap,
        "--out",
        out,
        "--defaults",
        "stream=stills,scenario=day,road_type=nature",
    )
    assert result.exit_code == 0, result.output
    assert classes(out) == ["person", "car", "truck"]
    a, b, c = (f"images/{SPLIT}/{stem}.jpg" for stem in ANNOTATIONS)
    assert_boxes(
        out,
        a,
        [("person", (10, 12, 20, 16)), ("car", (40, 30, 15, 10)), ("truck", (30, 2, 10, 10))],
    )
    assert_boxes(out, b, [("truck", (1, 1, 78, 58))])
    assert_boxes(out, c, [("person", (5, 5, 5, 5))])
    m = manifest(out)
    assert [r["reason"] for r in m[a]["ignore"]] == ["visdrone ignored region", "visdrone score 0"]
    assert m[a]["ignore"][1]["class"] == "car"
    assert m[a]["objects"] == {"truncation": [0, 0, 1], "occlusion": [0, 1, 2]}
    assert m[a]["driver_id"] == m[b]["driver_id"] == "visdrone-0000002" != m[c]["driver_id"]
    assert "class 'bicycle' dropped by the class map" in result.output
    assert "class 'others' dropped by the class map" in result.output
    check_passes(out)


def test_without_class_map_keeps_visdrone_names(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("data", "import", "visdrone", visdrone(tmp_path / "vd"), "--out", out).exit_code == 0
    assert classes(out)[:3] == ["pedestrian", "people", "bicycle"] and len(classes(out)) == 11


@pytest.mark.parametrize(
    "row, fragments",
    [
        ("10,12,20,16,1,1,0", ["0000002_00448_d_0000015.txt:2", "[fields]", "7 fields"]),
        ("10,12,x,16,1,1,0,0", ["0000002_00448_d_0000015.txt:2", "[w]", "'x' is not a number"]),
        (
            "10,12,20,16,1,12,0,0",
            ["0000002_00448_d_0000015.txt:2", "[class]", "not a VisDrone class"],
        ),
        ("10,12,-20,16,1,1,0,0", ["0000002_00448_d_0000015.txt:2", "[x,y,w,h]", "negative size"]),
    ],
)
def test_bad_lines_refused(tmp_path: Path, row: str, fragments: list[str]) -> None:
    lines = {**ANNOTATIONS, "0000002_00448_d_0000015": ["1,1,78,58,1,6,0,0", row]}
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "visdrone", visdrone(tmp_path / "vd", lines), "--out", out),
        out,
        *fragments,
    )


def test_annotation_without_image_refused(tmp_path: Path) -> None:
    src = visdrone(tmp_path / "vd")
    (src / SPLIT / "images" / "9999938_00000_d_0000001.jpg").unlink()
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "visdrone", src, "--out", out),
        out,
        "9999938_00000_d_0000001.txt",
        "[image]",
        "no image",
    )


def test_keep_split_records_visdrones_own_split(tmp_path: Path) -> None:
    root = visdrone(tmp_path / "vd")
    val = root / "VisDrone2019-DET-val"
    write_image(val / "images" / "0000009_00001_d_0000001.jpg", 80, 60, seed=9)
    (val / "annotations").mkdir(parents=True)
    (val / "annotations" / "0000009_00001_d_0000001.txt").write_text("10,12,20,16,1,1,0,0\n")
    out = tmp_path / "out"
    args = ("--defaults", "stream=stills,scenario=day,road_type=nature")
    result = run("data", "import", "visdrone", root, "--out", out, "--keep-split", *args)
    assert result.exit_code == 0, result.output
    m = manifest(out)
    assert {r["source_split"] for k, r in m.items() if SPLIT in k} == {"train"}
    assert m["images/VisDrone2019-DET-val/0000009_00001_d_0000001.jpg"]["source_split"] == "val"
    plain = run("data", "import", "visdrone", root, "--out", tmp_path / "plain", *args)
    assert plain.exit_code == 0 and all(
        "source_split" not in r for r in manifest(tmp_path / "plain").values()
    )
    (root / "VisDrone2019-DET-val").rename(root / "extra")
    refused = run(
        "data", "import", "visdrone", root, "--out", tmp_path / "o2", "--keep-split", *args
    )
    assert refused.exit_code != 0 and "cannot tell which VisDrone split" in refused.output
