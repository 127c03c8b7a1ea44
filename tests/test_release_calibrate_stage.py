"""The calibrate stage end to end on a synthetic dataset whose detector is overconfident (P(correct) = score²)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from vigil.detection.detections_file import detections_entry, write_detections
from vigil.params import load_section
from vigil.release.calibrate_stage import run_calibrate
from vigil.release.params import CalibrateParams

REPO = Path(__file__).resolve().parents[1]
PARAMS = replace(
    load_section(REPO / "params.yaml", "calibrate", CalibrateParams), min_samples=100, folds=3
)


def write_params(path: Path, **calibrate: object) -> Path:
    """The repository's `seed` and `calibrate` sections, with `calibrate` keys overridden."""
    repo = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    path.write_text(
        yaml.safe_dump({"seed": repo["seed"], "calibrate": {**repo["calibrate"], **calibrate}})
    )
    return path


CLASSES = ["car", "person", "bag"]
W, H = 320, 240


def make_release_inputs(root: Path, seed: int = 0) -> dict[str, Path]:
    """Dataset + split lists + val/test detections; class 2 ("bag") is rare (fits fall back to global)."""
    rng = np.random.default_rng(seed)
    data, split, det = root / "data", root / "split", root / "det"
    (data / "labels" / "lab").mkdir(parents=True)
    split.mkdir()
    det.mkdir()
    (data / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    for name, start, count in (("val", 0, 160), ("test", 1000, 160)):
        images, paths = [], []
        for i in range(start, start + count):
            rel = f"images/lab/{i:06d}.jpg"
            paths.append(rel)
            labels, dets = [], []
            for k in range(4):
                cls = 2 if (k == 3 and i % 8 == 0) else k % 2
                cx, cy = 0.15 + 0.22 * k, 0.3 + 0.4 * rng.uniform()
                labels.append(f"{cls} {cx:.6f} {cy:.6f} 0.100000 0.200000")
                score = float(rng.uniform(0.06, 0.99))
                shift = (
                    0.0 if rng.uniform() < score**2 else 0.08
                )  # a miss lands beside its object (IoU < 0.5)
                x1, y1 = (cx - 0.05 + shift) * W, (cy - 0.1) * H
                dets.append(([x1, y1, x1 + 0.1 * W, y1 + 0.2 * H], score, cls))
            (data / "labels" / "lab" / f"{i:06d}.txt").write_text("\n".join(labels) + "\n")
            images.append(detections_entry(rel, W, H, dets))
        images.append(
            detections_entry(f"images/lab/{start + count:06d}.jpg", W, H, [])
        )  # an image with no detection
        paths.append(images[-1].image)
        (split / f"{name}.txt").write_text("\n".join(paths) + "\n")
        write_detections(det / f"{name}.json", images, model="synthetic")
    return {"data": data, "split": split, "val": det / "val.json", "test": det / "test.json"}


def run_stage(
    inputs: dict[str, Path], out: Path, val: Path | None = None
) -> subprocess.CompletedProcess:
    out.mkdir(exist_ok=True)
    params = write_params(out / "params.yaml", min_samples=100, folds=3)
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "calibrate.py"),
            "--data",
            str(inputs["data"]),
            "--split",
            str(inputs["split"]),
            "--val-detections",
            str(val or inputs["val"]),
            "--test-detections",
            str(inputs["test"]),
            "--mapping",
            str(out / "models/calibration.json"),
            "--metrics",
            str(out / "metrics/calibrate.json"),
            "--reliability",
            str(out / "plots/calibrate/reliability.csv"),
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
    )


def test_stage_fits_on_val_and_measures_on_test(tmp_path: Path) -> None:
    inputs = make_release_inputs(tmp_path)
    out = tmp_path / "out"
    proc = run_stage(inputs, out)
    assert proc.returncode == 0, proc.stderr
    mapping = json.loads((out / "models/calibration.json").read_text())
    metrics = json.loads((out / "metrics/calibrate.json").read_text())
    assert mapping["schema"] == "vigil.calibration/2"
    assert mapping["fit_data"]["split"] == "val" and mapping["fit_data"]["images"] == 161
    assert [mapping["classes"][k]["source"] for k in "012"] == ["class", "class", "global"]
    test = metrics["test"]
    assert test["images"] == 161 and test["detections"] == 640 and test["ground_truth"] == 640
    assert test["ece"]["before"] > 0.1
    assert test["ece"]["after"] < test["ece"]["before"] / 2
    assert test["dece"]["after"] < test["dece"]["before"]
    assert metrics["operating_threshold"]["changed"] == 0
    assert metrics["operating_threshold"]["before"] == metrics["operating_threshold"]["after"]
    assert metrics["per_class"]["bag"]["source"] == "global"
    assert metrics["per_class"]["bag"]["reason"].endswith("< min_samples 100")
    assert set(metrics["global"]["selection"]) == set(PARAMS.methods)
    for name in ("nll", "brier"):
        assert test[name]["after"] < test[name]["before"]
    for name in ("ece", "dece"):  # a binned error is never measured below 0 and has a floor > 0
        assert 0 < test[name]["floor_after"] < test[name]["after"]
    rows = list(csv.DictReader((out / "plots/calibrate/reliability.csv").open()))
    assert len(rows) == 10 and sum(int(r["count_after"]) for r in rows) == test["used"]
    assert "D-ECE" in proc.stdout


def test_same_inputs_give_identical_outputs(tmp_path: Path) -> None:
    inputs = make_release_inputs(tmp_path)
    first = run_calibrate(
        inputs["data"], inputs["split"], inputs["val"], inputs["test"], PARAMS, seed=0
    )
    second = run_calibrate(
        inputs["data"], inputs["split"], inputs["val"], inputs["test"], PARAMS, seed=0
    )
    assert json.dumps(first.mapping, sort_keys=True) == json.dumps(second.mapping, sort_keys=True)
    assert first.metrics == second.metrics and first.reliability_csv == second.reliability_csv


def test_test_images_in_the_val_detections_are_refused(tmp_path: Path) -> None:
    inputs = make_release_inputs(tmp_path)
    proc = run_stage(inputs, tmp_path / "out", val=inputs["test"])
    assert proc.returncode == 2
    assert "is not in this split's list" in proc.stderr and str(inputs["test"]) in proc.stderr
    assert not (tmp_path / "out" / "models" / "calibration.json").exists()


def test_bad_params_exit_2_naming_the_key(tmp_path: Path) -> None:
    inputs = make_release_inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    write_params(
        out / "params.yaml", methods=["histogram"]
    )  # the other bad values: test_release_calibration.py
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "calibrate.py"),
            "--data",
            str(inputs["data"]),
            "--split",
            str(inputs["split"]),
            "--val-detections",
            str(inputs["val"]),
            "--test-detections",
            str(inputs["test"]),
            "--mapping",
            str(out / "m.json"),
            "--metrics",
            str(out / "c.json"),
            "--reliability",
            str(out / "r.csv"),
            "--params",
            str(out / "params.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "calibrate.methods" in proc.stderr


def test_no_detections_above_the_floor_records_why_and_the_gate_shows_it(tmp_path: Path) -> None:
    """A model that finds nothing: calibrate writes nulls with the reason, the gate shows that reason."""
    from vigil.release.gate import evaluate_gate
    from vigil.release.params import GateSpec

    inputs = make_release_inputs(tmp_path)
    for name in ("val", "test"):
        paths = (inputs["split"] / f"{name}.txt").read_text().split()
        write_detections(
            inputs[name], [detections_entry(p, W, H, []) for p in paths], model="blind"
        )
    result = run_calibrate(
        inputs["data"], inputs["split"], inputs["val"], inputs["test"], PARAMS, seed=0
    )
    metrics = json.loads(json.dumps(result.metrics))  # as the stage writes it
    assert metrics["test"]["dece"]["after"] is None
    assert (
        "no val detections" in metrics["reason"]
        and "no test detections" in metrics["test"]["reason"]
    )
    gate = GateSpec(
        name="D-ECE after calibration", metric="calibrate.test.dece.after", op="<=", threshold=0.15
    )
    verdict = evaluate_gate(gate, {"calibrate": metrics}, {})
    assert not verdict.passed and verdict.reason is not None
    assert verdict.reason.startswith("not measured") and "missing metric" not in verdict.reason
    assert "no test detections" in verdict.reason and "no val detections" in verdict.reason
