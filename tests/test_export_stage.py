"""The export stage end to end on a tiny random-weight model: ONNX parity, INT8, TensorRT skip, metric keys.

Random weights make mAP meaningless; what is checked is that each format is built, runs, agrees with
PyTorch where it should, and lands in metrics/export.json under the paths the gate reads.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from export_helpers import tiny_release
from repo_params import raw, section, write_params
from vigil.detection.types import ImageDetections
from vigil.export import tensorrt
from vigil.export.engines import OnnxEngine, TorchEngine
from vigil.export.params import ExportParams
from vigil.export.pipeline import preprocess
from vigil.models.inference import read_images
from vigil.params import build


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path, Path]:
    """(metrics, out dir, dataset root, checkpoint) of one run of the stage's library function."""
    from vigil.export.export_stage import run_export

    base = tmp_path_factory.mktemp("export")
    root, checkpoint, test, val = tiny_release(base)
    shipped = section("export", ExportParams)
    params = replace(
        shipped,
        coreml=False,
        latency_runs=3,
        latency_warmup=1,
        parity_conf=0.001,
        int8=replace(shipped.int8, calibration_images=2),
    )
    out, metrics = base / "out dir", base / "metrics" / "export.json"
    calibration = base / "models" / "calibration.json"
    calibration.write_text(json.dumps(MAPPING))
    run_export(checkpoint, root, test, val, out, metrics, params, calibration)
    return json.loads(metrics.read_text()), out, root, checkpoint


# position-aware (/2): class 1 has its own table; geometry shifts every score
MAPPING = {
    "schema": "vigil.calibration/2",
    "features": ["cx", "w"],
    "logit_eps": 1e-6,
    "keep": {"score": "raw", "threshold": 0.0},
    "global": {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.7, 1.0], "shift": [-2.0, 1.5]},
    "classes": {"1": {"x": [0.0, 1.0], "y": [0.0, 1.0], "shift": [1.0, 0.0]}},
}


def get(doc: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        doc = doc[key]
    return doc


@pytest.mark.trains
def test_the_gate_paths_exist_and_hold_numbers(
    exported: tuple[dict[str, Any], Path, Path, Path],
) -> None:
    metrics = exported[0]
    for path in (
        "onnx.map50_95",
        "onnx.map50_95_change",
        "onnx_int8.map50_95",
        "onnx_int8.map50_95_change_vs_onnx",
        "onnx_int8.latency_ms.threads_1.median",
        "onnx_int8.latency_ms.threads_1.p95",
        "onnx_int8.latency_ms.threads_2.median",
        "onnx.latency_ms.threads_1.median",
        "torch.latency_ms.threads_2.p95",
        "onnx_int8.speedup_vs_onnx.threads_1.forward_median",
        "onnx.size_mb",
        "onnx_int8.size_mb",
        "onnx.parity.max_abs_box_px",
        "onnx.parity.max_abs_score",
    ):
        assert isinstance(get(metrics, path), (int, float)), path
    assert metrics["imgsz"] == 64
    assert "cpu" in metrics["hardware"] and isinstance(metrics["hardware"]["vnni"], bool)
    assert metrics["onnx"]["status"] == metrics["onnx_int8"]["status"] == "ok"
    assert metrics["coreml"] == {"status": "skipped", "reason": "export.coreml is false"}
    assert metrics["calibration"]["metadata_key"] == "vigil.calibration"
    assert metrics["onnx"]["calibration_embedded"] is metrics["onnx_int8"]["calibration_embedded"]
    assert metrics["onnx"]["calibration_embedded"] is True
    assert isinstance(metrics["onnx_int8"]["parity"]["max_abs_calibrated_score"], float)


@pytest.mark.trains
def test_onnx_agrees_with_torch_box_for_box(
    exported: tuple[dict[str, Any], Path, Path, Path],
) -> None:
    metrics, out, root, checkpoint = exported
    parity = metrics["onnx"]["parity"]
    assert parity["matched"] > 0
    assert parity["unmatched_reference"] == parity["unmatched_other"] == 0
    assert parity["max_abs_box_px"] < 0.05 and parity["max_abs_score"] < 1e-3
    assert abs(metrics["onnx"]["map50_95_change"]) < 0.5
    torch_engine, onnx_engine = TorchEngine(checkpoint), OnnxEngine(out / "model.onnx")
    for image in read_images(root, ["images/000.png", "images/001.png"]):
        tensor = preprocess(image, 64)
        np.testing.assert_allclose(
            onnx_engine.forward(tensor), torch_engine.forward(tensor), atol=2e-3, rtol=1e-3
        )


@pytest.mark.trains
def test_int8_file_is_produced_is_smaller_and_runs(
    exported: tuple[dict[str, Any], Path, Path, Path],
) -> None:
    metrics, out, root, _ = exported
    int8 = out / "model_int8.onnx"
    assert int8.is_file() and metrics["onnx_int8"]["size_mb"] < metrics["onnx"]["size_mb"]
    how = metrics["onnx_int8"]["quantization"]
    assert how["excluded_nodes"] > 0
    recipes = section("export", ExportParams).int8.recipes
    assert [row["recipe"] for row in how["recipes"]] == [r.label for r in recipes]
    scores = [row.get("val_map50_95", -1.0) for row in how["recipes"]]
    assert how["chosen"] == how["recipes"][scores.index(max(scores))]["recipe"]
    assert how["chosen"] == f"{how['method']}/{how['exclude']}"
    raw = OnnxEngine(int8, "onnx-int8").forward(
        preprocess(read_images(root, ["images/000.png"])[0], 64)
    )
    assert raw.shape == (1, 4 + 3, 84) and np.isfinite(raw).all()


@pytest.mark.trains
def test_tensorrt_is_recorded_skipped_with_a_reason_here(
    exported: tuple[dict[str, Any], Path, Path, Path],
) -> None:
    reason = tensorrt.unavailable()
    if reason is None:
        pytest.skip("tensorrt and CUDA are present: the engine is built instead")
    assert exported[0]["tensorrt"] == {"status": "skipped", "reason": reason}
    assert not list(exported[1].glob("*.engine"))


def test_the_best_val_recipe_is_picked_and_ties_go_to_the_earlier() -> None:
    from vigil.export.export_stage import pick_recipe

    assert pick_recipe([0.40, 0.45, 0.43]) == 1
    assert pick_recipe([0.45, 0.45, 0.30]) == 0
    assert pick_recipe([0.1]) == 0


def test_unknown_or_mistyped_export_params_are_refused() -> None:
    from vigil.errors import VigilError

    bad = [{"method": "minmax", "exclude": "post"}, {"method": "kl", "exclude": "post"}]
    with pytest.raises(VigilError, match=r"export\.int8\.recipes\[1\]\.method.*kl"):
        build(ExportParams, raw("export", {"int8": {"recipes": bad}}), "export")
    twice = [{"method": "minmax", "exclude": "post"}] * 2
    with pytest.raises(VigilError, match="minmax/post is listed twice"):
        build(ExportParams, raw("export", {"int8": {"recipes": twice}}), "export")
    with pytest.raises(VigilError, match="export.int8.recipes"):
        build(ExportParams, raw("export", {"int8": {"recipes": []}}), "export")
    with pytest.raises(VigilError, match="export.latency_thread"):
        build(ExportParams, raw("export", {"latency_thread": [1]}), "export")
    with pytest.raises(VigilError, match="multiple of 32"):
        build(ExportParams, raw("export", {"imgsz": 100}), "export")


def test_stage_script_refuses_a_missing_model_and_a_bad_param_with_one_message(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    args = [
        sys.executable,
        str(repo / "stages" / "export.py"),
        "--model",
        str(tmp_path / "none.pt"),
        "--data",
        str(tmp_path),
        "--test-split",
        "t.txt",
        "--val-split",
        "v.txt",
        "--calibration",
        str(tmp_path / "calibration.json"),
        "--out",
        str(tmp_path / "out"),
        "--metrics",
        str(tmp_path / "m.json"),
        "--params",
        str(tmp_path / "params.yaml"),
    ]
    write_params(tmp_path, {"export.latency_runs": 3})
    (tmp_path / "calibration.json").write_text('{"schema": "vigil.calibration/2"}')
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "[--calibration features]" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
    (tmp_path / "calibration.json").write_text(json.dumps(MAPPING))
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert (
        done.returncode == 2
        and "model checkpoint not found" in done.stderr
        and "Traceback" not in done.stderr
    )
    write_params(tmp_path, {"export.int8.methd": "minmax"})
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "export.int8.methd" in done.stderr
    assert not (tmp_path / "m.json").exists()


@pytest.mark.trains
def test_every_engine_gives_the_same_calibrated_scores_for_the_same_boxes(
    exported: tuple[dict[str, Any], Path, Path, Path], tmp_path: Path
) -> None:
    """torch (the mapping file), ONNX and ONNX INT8 (each its own metadata) through `vigil predict`."""
    from vigil.export.embedded_calibration import from_metadata, onnx_metadata
    from vigil.export.parity import compare
    from vigil.export.predict import predict_files

    metrics, out, root, checkpoint = exported
    images = [root / "images/000.png", root / "images/001.png", root / "images/002.png"]
    for name in ("model.onnx", "model_int8.onnx"):
        assert from_metadata(onnx_metadata(out / name), out / name) == MAPPING
    mapping_file = tmp_path / "calibration.json"
    mapping_file.write_text(json.dumps(MAPPING))
    runs = {
        "torch": predict_files(
            images,
            engine="torch",
            model=checkpoint,
            calibration=mapping_file,
            trust_pickle=True,
            conf=0.001,
        ),
        "onnx": predict_files(images, engine="onnx", model=out / "model.onnx", conf=0.001),
        "onnx-int8": predict_files(
            images, engine="onnx-int8", model=out / "model_int8.onnx", conf=0.001
        ),
    }

    def as_detections(records: list[dict[str, Any]], key: str) -> list[ImageDetections]:
        return [
            ImageDetections(
                [d["xyxy"] for d in r["detections"]],
                [d[key] for d in r["detections"]],
                [d["class"] for d in r["detections"]],
            )
            for r in records
        ]

    reference = runs["torch"]
    assert all(r["calibrated"] for records in runs.values() for r in records)
    assert sum(len(r["detections"]) for r in reference) > 0
    # the mapping moved the scores: parity below is about calibrated scores, not raw ones passed through
    assert any(d["score"] != d["raw_score"] for r in reference for d in r["detections"])
    for engine, tolerance in (("onnx", 1e-4), ("onnx-int8", 0.05)):
        raw = compare(
            as_detections(reference, "raw_score"), as_detections(runs[engine], "raw_score"), iou=0.5
        )
        calibrated = compare(
            as_detections(reference, "score"), as_detections(runs[engine], "score"), iou=0.5
        )
        assert calibrated["matched"] == raw["matched"] > 0, engine
        assert calibrated["max_abs_score"] <= tolerance, (engine, calibrated, raw)
