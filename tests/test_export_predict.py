"""`vigil predict`: torch and ONNX give the same calibrated boxes for the same image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from export_helpers import IMAGES, tiny_release
from vigil.cli import app
from vigil.export.onnx_fp32 import export_onnx
from vigil.release.mapping import SCHEMA


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """(dataset root, checkpoint, ONNX file, calibration mapping)."""
    base = tmp_path_factory.mktemp("predict")
    root, checkpoint, _, _ = tiny_release(base)
    onnx = export_onnx(checkpoint, base / "export" / "model.onnx", imgsz=64, opset=None, simplify=True)
    mapping = {"schema": SCHEMA, "global": {"x": [0.0, 1.0], "y": [0.0, 0.5], "threshold": 0.0005},
               "classes": {"1": {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.9, 1.0], "threshold": 0.0009}}}
    calibration = base / "calibration.json"
    calibration.write_text(json.dumps(mapping))
    return root, checkpoint, onnx, calibration


def predict(*args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["predict", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_torch_and_onnx_give_the_same_calibrated_boxes(release: tuple[Path, Path, Path, Path]) -> None:
    root, checkpoint, onnx, calibration = release
    images = [str(root / im) for im in IMAGES]
    common = ["--calibration", str(calibration), "--conf", "0.001"]
    torch_out = predict(*images, "--engine", "torch", "--model", str(checkpoint), *common)
    onnx_out = predict(*images, "--engine", "onnx", "--model", str(onnx), *common)
    assert len(torch_out) == len(onnx_out) == 3
    total = 0
    for a, b in zip(torch_out, onnx_out):
        assert a["calibrated"] and a["image"] == b["image"]
        assert len(a["detections"]) == len(b["detections"])
        for da, db in zip(a["detections"], b["detections"]):
            assert da["class"] == db["class"]
            np.testing.assert_allclose(da["xyxy"], db["xyxy"], atol=0.05)
            assert da["score"] == pytest.approx(db["score"], rel=2e-3, abs=1e-6)   # random weights: scores ~1e-3
            assert da["raw_score"] == pytest.approx(db["raw_score"], rel=2e-3, abs=1e-6)
            slope = 0.5 if da["class"] != 1 else None   # the mapping was applied, not the raw score passed through
            if slope is not None:
                assert da["score"] == pytest.approx(slope * da["raw_score"], abs=1e-5)
        total += len(a["detections"])
    assert total > 0


def test_calibration_threshold_drops_boxes_and_unknown_engine_fails(release: tuple[Path, Path, Path, Path],
                                                                   tmp_path: Path) -> None:
    root, _, onnx, _ = release
    image = str(root / IMAGES[0])
    raw = predict(image, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001")[0]["detections"]
    assert raw and all(d["score"] == d["raw_score"] for d in raw)
    scores = [d["raw_score"] for d in raw]
    assert max(scores) > min(scores)
    median = (max(scores) + min(scores)) / 2   # a raw cut between the extremes, so some boxes go
    mapping = {"schema": SCHEMA, "global": {"x": [0.0, 1.0], "y": [0.0, 0.5], "threshold": 0.5 * median}}
    (tmp_path / "c.json").write_text(json.dumps(mapping))
    kept = predict(image, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001",
                   "--calibration", str(tmp_path / "c.json"))[0]["detections"]
    assert len(kept) == sum(d["raw_score"] >= median - 1e-5 for d in raw) < len(raw)
    assert all(d["score"] >= 0.5 * median - 1e-5 for d in kept)
    result = CliRunner().invoke(app, ["predict", image, "--engine", "tflite"])
    assert result.exit_code != 0 and "unknown engine" in result.output
