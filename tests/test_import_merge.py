"""`vigil data merge`: unique names, classes united by name, provenance per image, sampling, refusals."""

from __future__ import annotations

import json
from pathlib import Path

from import_helpers import (
    assert_boxes,
    assert_refused,
    boxes_px,
    check_passes,
    classes,
    manifest,
    run,
)
from test_import_sessions import session
from test_import_visdrone import DRONE_MAP, visdrone
from test_import_yolo import yolo_folder

STRATA = "stream=cctv,scenario=day,road_type=campus"


def imported(tmp: Path) -> tuple[Path, Path, Path]:
    cmap = tmp / "drone.yaml"
    cmap.write_text(DRONE_MAP)
    drone, yolo, rec = tmp / "drone", tmp / "yolo", tmp / "rec"
    assert (
        run(
            "data",
            "import",
            "visdrone",
            visdrone(tmp / "vd"),
            "--class-map",
            cmap,
            "--out",
            drone,
            "--defaults",
            STRATA,
        ).exit_code
        == 0
    )
    assert (
        run(
            "data", "import", "yolo", yolo_folder(tmp / "y"), "--out", yolo, "--defaults", STRATA
        ).exit_code
        == 0
    )
    assert (
        run(
            "data", "import", "sessions", session(tmp / "s"), "--out", rec, "--defaults", STRATA
        ).exit_code
        == 0
    )
    return drone, yolo, rec


def test_merge_keeps_names_unique_and_boxes_right(tmp_path: Path) -> None:
    drone, yolo, rec = imported(tmp_path)
    out = tmp_path / "merged"
    result = run("data", "merge", yolo, drone, rec, "--out", out)
    assert result.exit_code == 0, result.output
    assert classes(out) == ["cat", "dog", "person", "car", "truck", "ball"]
    m = manifest(out)
    assert len(m) == len(manifest(yolo)) + len(manifest(drone)) + len(manifest(rec))
    for name, src in (("yolo", yolo), ("drone", drone), ("rec", rec)):
        for rel, record in manifest(src).items():
            new = f"images/{name}/{rel.removeprefix('images/')}"
            assert m[new]["dataset"] == name and m[new]["merged_from"] == f"{name}:{rel}"
            assert m[new]["driver_id"] == record["driver_id"]
            assert_boxes(out, new, boxes_px(src, rel), tol=1e-3)
    frame = next(r for r in m.values() if r["dataset"] == "rec")
    assert (out / frame["calibration"] / "intrinsics_left.json").is_file()
    assert json.loads((out / ".mode_config.json").read_text())["mode"] == "boxes"
    check_passes(out)


def test_sample_ratio_is_seeded(tmp_path: Path) -> None:
    drone, yolo, _ = imported(tmp_path)
    first = run("data", "merge", drone, yolo, "--out", tmp_path / "m1", "--sample", "drone=0.34")
    again = run("data", "merge", drone, yolo, "--out", tmp_path / "m2", "--sample", "drone=0.34")
    assert first.exit_code == 0, first.output
    kept = [r for r in manifest(tmp_path / "m1").values() if r["dataset"] == "drone"]
    assert len(kept) == 1 and "2 × not sampled from drone" in first.output
    assert (
        sorted(manifest(tmp_path / "m1")) == sorted(manifest(tmp_path / "m2"))
        and again.exit_code == 0
    )


def test_bad_sample_and_missing_input_refused(tmp_path: Path) -> None:
    drone, yolo, _ = imported(tmp_path)
    out = tmp_path / "m"
    assert_refused(
        run("data", "merge", drone, yolo, "--out", out, "--sample", "nope=0.3"),
        out,
        "[--sample]",
        "inputs: drone, yolo",
    )
    assert_refused(
        run("data", "merge", drone, yolo, "--out", out, "--sample", "drone=1.5"),
        out,
        "not within (0, 1]",
    )
    (yolo / "manifest.jsonl").write_text((yolo / "manifest.jsonl").read_text() + "{not json\n")
    assert_refused(
        run("data", "merge", drone, yolo, "--out", out), out, "manifest.jsonl:4", "not valid JSON"
    )
