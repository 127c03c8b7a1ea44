"""The range stage: fits on val, scores on test, ships models/range.json; its errors are one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CLASSES, make_dataset
from range_helpers import tiny_depth_model
from repo_params import section, write_params
from vigil.data.distance import DistanceParams
from vigil.detection.boxes import yolo_to_xyxy
from vigil.detection.detections_file import detections_entry, write_detections
from vigil.range.depth import disparity_map, load_depth_model, sample_boxes
from vigil.range.params import RangeParams
from vigil.range.stage import run_range

REPO = Path(__file__).resolve().parents[1]
HEIGHTS = {"tshirt": 0.7, "trouser": 1.0, "bag": 0.4}  # conftest's classes, nominal
TRUE_FACTOR = 1.5  # the objects are really 1.5 times their nominal height: only a fit can know
FY = 400.0
N = 24


def _labels(i: int) -> list[tuple[int, float, float, float, float]]:
    rng = np.random.default_rng(i)
    return [
        (k % len(CLASSES), 0.25 + 0.5 * k, 0.5, 0.2, float(rng.uniform(0.1, 0.9))) for k in range(2)
    ]


def ranged_dataset(root: Path, intrinsics: bool = True, depth: tuple | None = None) -> Path:
    """make_dataset with boxes of many heights, their distances (1.5 × nominal height) and intrinsics.

    With `depth` = (model, scale, shift), the distances are instead 1 / (scale · disparity + shift)
    of the model's own disparity at each box: what a perfectly fitted depth mapping would give.
    """
    make_dataset(root, n=N)
    lines = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        i = int(Path(record["image"]).stem)
        rows = _labels(i)
        (root / f"labels/{i:03d}.txt").write_text(
            "".join(" ".join(map(str, r)) + "\n" for r in rows)
        )
        heights_px = [r[4] * 48 for r in rows]
        if depth is None:
            tall = [HEIGHTS[CLASSES[r[0]]] * TRUE_FACTOR for r in rows]
            distances = [FY * t / h for t, h in zip(tall, heights_px, strict=True)]
        else:
            import cv2

            model, scale, shift = depth
            boxes = yolo_to_xyxy([r[1:] for r in rows], 64, 48)
            disparity = sample_boxes(
                disparity_map(model, cv2.imread(str(root / record["image"])), 56), boxes, 0.5
            )
            distances = list(1.0 / (scale * disparity + shift))
        record["objects"] = {"distance": distances}
        if intrinsics:
            record["intrinsics"] = {"fx": FY, "fy": FY, "cx": 32.0, "cy": 24.0}
        lines.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def perfect_detections(root: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """Split lists (16 val, 8 test) and detections that are the true boxes, plus one stray box each."""
    split = tmp / "split"
    split.mkdir()
    images = [f"images/{i:03d}.png" for i in range(N)]
    paths = []
    for name, part in (("val", images[:16]), ("test", images[16:])):
        (split / f"{name}.txt").write_text("".join(f"{im}\n" for im in part))
        entries = []
        for im in part:
            rows = _labels(int(Path(im).stem))
            boxes = yolo_to_xyxy([r[1:] for r in rows], 64, 48)
            dets = [(list(b), 0.9, r[0]) for b, r in zip(boxes, rows, strict=True)]
            dets.append(([0.0, 0.0, 5.0, 5.0], 0.8, 0))  # matches nothing: not ranged
            entries.append(detections_entry(im, 64, 48, dets))
        paths.append(tmp / f"detections_{name}.json")
        write_detections(paths[-1], entries)
    return split, paths[0], paths[1]


def run_stage(root: Path, tmp: Path, params: Path) -> subprocess.CompletedProcess[str]:
    split, val, test = perfect_detections(root, tmp)
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "range.py"),
            "--data",
            str(root),
            "--split",
            str(split),
            "--val-detections",
            str(val),
            "--test-detections",
            str(test),
            "--out",
            str(tmp / "models" / "range.json"),
            "--metrics",
            str(tmp / "metrics" / "range.json"),
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
    )


def test_the_fit_learns_what_the_class_heights_miss(tmp_path: Path) -> None:
    """Fails if the fit were skipped: the nominal heights are 1.5x too small, so unfitted ranges are 1/3 short."""
    root = ranged_dataset(tmp_path / "ds")
    params = write_params(tmp_path, {"range.heights": HEIGHTS})
    proc = run_stage(root, tmp_path, params)
    assert proc.returncode == 0, proc.stderr
    shipped = json.loads((tmp_path / "models" / "range.json").read_text())
    assert shipped["method"] == "geometric" and shipped["fit"]["fitted"]
    assert shipped["fit"]["scale"] == pytest.approx(1 / TRUE_FACTOR, rel=1e-3)
    assert shipped["fit"]["shift"] == pytest.approx(0.0, abs=1e-5)
    assert shipped["camera"]["fy"] == FY  # the one camera every val image has
    metrics = json.loads((tmp_path / "metrics" / "range.json").read_text())
    geo = metrics["geometric"]
    assert metrics["test"] == {"images": 8, "truth_boxes": 16, "detections": 16}
    for kind in ("detections", "truth_boxes"):
        assert geo[kind]["unfitted"]["mean_abs_pct"] == pytest.approx(100 / 3, rel=1e-3)
        assert geo[kind]["fitted"]["mean_abs_pct"] < 0.1
    assert metrics["depth"]["reason"].startswith("no depth model")


def test_too_few_val_objects_ship_the_unfitted_formula_with_the_reason(tmp_path: Path) -> None:
    root = ranged_dataset(tmp_path / "ds")
    params = write_params(tmp_path, {"range.heights": HEIGHTS, "range.fit.min_objects": 1000})
    assert run_stage(root, tmp_path, params).returncode == 0
    shipped = json.loads((tmp_path / "models" / "range.json").read_text())
    assert not shipped["fit"]["fitted"] and (shipped["fit"]["scale"], shipped["fit"]["shift"]) == (
        1.0,
        0.0,
    )
    assert "range.fit.min_objects" in shipped["fit"]["reason"]


def test_no_intrinsics_and_no_fallback_is_one_line_naming_the_field(tmp_path: Path) -> None:
    root = ranged_dataset(tmp_path / "ds", intrinsics=False)
    proc = run_stage(root, tmp_path, write_params(tmp_path, {"range.heights": HEIGHTS}))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "manifest.jsonl [intrinsics]" in lines[0], proc.stderr
    assert "range.intrinsics" in lines[0]
    assert not (tmp_path / "models" / "range.json").exists()


def test_the_params_fallback_camera_is_used_and_shipped(tmp_path: Path) -> None:
    root = ranged_dataset(tmp_path / "ds", intrinsics=False)
    camera = {
        "fx": 800.0,
        "fy": 800.0,
        "cx": 64.0,
        "cy": 48.0,
        "width": 128,
        "height": 96,
    }  # 2x the images
    proc = run_stage(
        root,
        tmp_path,
        write_params(tmp_path, {"range.heights": HEIGHTS, "range.intrinsics": camera}),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "models" / "range.json").read_text())["camera"] == camera
    metrics = json.loads((tmp_path / "metrics" / "range.json").read_text())
    assert metrics["geometric"]["truth_boxes"]["fitted"]["mean_abs_pct"] < 0.1


def test_method_none_ships_no_estimator(tmp_path: Path) -> None:
    proc = run_stage(
        make_dataset(tmp_path / "ds", n=N),
        tmp_path,
        write_params(tmp_path, {"range.method": "none"}),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "models" / "range.json").read_text())["method"] == "none"


def test_the_depth_path_fits_the_models_disparity_to_metres(tmp_path: Path) -> None:
    folder = tiny_depth_model(tmp_path / "depth")
    model = load_depth_model(folder)
    root = ranged_dataset(tmp_path / "ds", depth=(model, 2.0, 0.05))
    split, val, test = perfect_detections(root, tmp_path)
    settings = section(
        "range",
        RangeParams,
        method="depth",
        heights=HEIGHTS,
        depth=section("range", RangeParams).depth.__class__(
            path=str(folder), input_size=56, box_fraction=0.5
        ),
    )
    distance = section("distance", DistanceParams)
    result = run_range(root, split, val, test, settings, distance)
    fit = result.document["fit"]
    assert result.document["method"] == "depth" and result.document["depth"]["path"] == str(folder)
    assert fit["scale"] == pytest.approx(2.0, rel=1e-3) and fit["shift"] == pytest.approx(
        0.05, rel=1e-2
    )
    depth = result.metrics["depth"]
    assert (
        depth["truth_boxes"]["fitted"]["mean_abs_pct"] < 0.1
        and "unfitted" not in depth["truth_boxes"]
    )
    assert "fitted" in result.metrics["geometric"]["truth_boxes"]  # both estimators are scored
