"""`vigil predict`: torch and ONNX give the same calibrated boxes; the ONNX model's own calibration applies
by default, `--raw` switches it off; bad input is one clear line; stdout is JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from export_helpers import IMAGES, tiny_release
from vigil.cli import app
from vigil.export.embedded_calibration import embed_onnx
from vigil.export.onnx_fp32 import export_onnx
from vigil.release.mapping import SCHEMA, SCHEMA_V1


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """(dataset root, checkpoint, ONNX file carrying CARRIED, calibration mapping file)."""
    base = tmp_path_factory.mktemp("predict")
    root, checkpoint, _, _ = tiny_release(base)
    onnx = export_onnx(
        checkpoint, base / "export" / "model.onnx", imgsz=64, opset=None, simplify=True
    )
    embed_onnx(onnx, CARRIED)  # as the export stage does
    mapping = {
        "schema": SCHEMA_V1,
        "global": {"x": [0.0, 1.0], "y": [0.0, 0.5], "threshold": 0.0005},
        "classes": {"1": {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.9, 1.0], "threshold": 0.0009}},
    }
    calibration = base / "calibration.json"
    calibration.write_text(json.dumps(mapping))
    return root, checkpoint, onnx, calibration


# A position-aware /2 mapping: score ×3 on the left of the image, its raw value on the right
CARRIED = {
    "schema": SCHEMA,
    "features": ["cx"],
    "logit_eps": 1e-6,
    "keep": {"score": "raw", "threshold": 0.0},
    "global": {"x": [0.0, 1.0], "y": [0.0, 1.0], "shift": [-3.0]},
    "classes": {},
}


def predict(*args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["predict", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_torch_and_onnx_give_the_same_calibrated_boxes(
    release: tuple[Path, Path, Path, Path],
) -> None:
    root, checkpoint, onnx, calibration = release
    images = [str(root / im) for im in IMAGES]
    common = ["--calibration", str(calibration), "--conf", "0.001"]
    torch_out = predict(
        *images, "--engine", "torch", "--model", str(checkpoint), "--trust-pickle", *common
    )
    onnx_out = predict(*images, "--engine", "onnx", "--model", str(onnx), *common)
    assert len(torch_out) == len(onnx_out) == 3
    total = 0
    for a, b in zip(torch_out, onnx_out, strict=True):
        assert a["calibrated"] and a["image"] == b["image"]
        assert len(a["detections"]) == len(b["detections"])
        for da, db in zip(a["detections"], b["detections"], strict=True):
            assert da["class"] == db["class"]
            np.testing.assert_allclose(da["xyxy"], db["xyxy"], atol=0.05)
            assert da["score"] == pytest.approx(
                db["score"], rel=2e-3, abs=1e-6
            )  # random weights: scores ~1e-3
            assert da["raw_score"] == pytest.approx(db["raw_score"], rel=2e-3, abs=1e-6)
            slope = (
                0.5 if da["class"] != 1 else None
            )  # the mapping was applied, not the raw score passed through
            if slope is not None:
                assert da["score"] == pytest.approx(slope * da["raw_score"], abs=1e-5)
        total += len(a["detections"])
    assert total > 0


def test_calibration_threshold_drops_boxes_and_unknown_engine_fails(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    root, _, onnx, _ = release
    image = str(root / IMAGES[0])
    raw = predict(image, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001", "--raw")[0][
        "detections"
    ]
    assert raw and all(d["score"] == d["raw_score"] for d in raw)
    scores = [d["raw_score"] for d in raw]
    assert max(scores) > min(scores)
    median = (max(scores) + min(scores)) / 2  # a raw cut between the extremes, so some boxes go
    mapping = {
        "schema": SCHEMA_V1,
        "global": {"x": [0.0, 1.0], "y": [0.0, 0.5], "threshold": 0.5 * median},
    }
    (tmp_path / "c.json").write_text(json.dumps(mapping))
    kept = predict(
        image,
        "--engine",
        "onnx",
        "--model",
        str(onnx),
        "--conf",
        "0.001",
        "--calibration",
        str(tmp_path / "c.json"),
    )[0]["detections"]
    assert len(kept) == sum(d["raw_score"] >= median - 1e-5 for d in raw) < len(raw)
    assert all(d["score"] >= 0.5 * median - 1e-5 for d in kept)
    result = CliRunner().invoke(app, ["predict", image, "--engine", "tflite"])
    assert result.exit_code != 0 and "unknown engine" in result.output


def run(*args: str) -> tuple[int, list[str], str]:
    """(exit code, stdout lines, stderr) of `vigil predict …`."""
    result = CliRunner().invoke(app, ["predict", *args])
    return result.exit_code, result.stdout.splitlines(), result.stderr


def one_clear_line(code: int, stdout: list[str], stderr: str) -> str:
    assert code == 2, stderr
    assert stdout == [] and "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def garbage_calibrations() -> dict[str, str]:
    table = {"x": [0.0, 1.0], "y": [0.0, 1.0], "threshold": 0.5}
    SCHEMA = SCHEMA_V1
    return {
        "shift of the wrong length": json.dumps(
            {**CARRIED, "global": {"x": [0.0, 1.0], "y": [0.0, 1.0], "shift": [1.0, 2.0]}}
        ),
        "not JSON": '{"schema": ',
        "a list": "[1, 2]",
        "no schema": json.dumps({"global": table}),
        "no global": json.dumps({"schema": SCHEMA}),
        "x decreasing": json.dumps({"schema": SCHEMA, "global": {**table, "x": [1.0, 0.0]}}),
        "nan threshold": json.dumps(
            {"schema": SCHEMA, "global": {**table, "threshold": float("nan")}}
        ),
        "class without y": json.dumps(
            {"schema": SCHEMA, "global": table, "classes": {"0": {"x": [0, 1], "threshold": 0.1}}}
        ),
        "classes a list": json.dumps({"schema": SCHEMA, "global": table, "classes": [1]}),
        "deep": "[" * 100000 + "]" * 100000,
    }


@pytest.mark.parametrize("case", [*garbage_calibrations(), "binary"])
def test_a_garbage_calibration_file_is_one_line(
    release: tuple[Path, Path, Path, Path], tmp_path: Path, case: str
) -> None:
    root, _, onnx, _ = release
    bad = tmp_path / "calibration.json"
    if case == "binary":
        bad.write_bytes(b"\xff\xfe\x00garbage")
    else:
        bad.write_text(garbage_calibrations()[case])
    line = one_clear_line(
        *run(
            str(root / IMAGES[0]),
            "--engine",
            "onnx",
            "--model",
            str(onnx),
            "--calibration",
            str(bad),
        )
    )
    assert "--calibration" in line


@pytest.mark.parametrize(
    "options,field",
    [
        (["--conf", "5"], "--conf"),
        (["--conf", "nan"], "--conf"),
        (["--conf", "-0.1"], "--conf"),
        (["--imgsz", "0"], "--imgsz"),
        (["--imgsz", "-32"], "--imgsz"),
        (["--imgsz", "33"], "--imgsz"),
        (["--imgsz", "1000000"], "--imgsz"),
        (["--imgsz", "320"], "--imgsz"),  # the ONNX input is fixed at 64
        (["--engine", "tflite"], "--engine"),
        (["--out", "."], "--out"),
        (["--out", "/proc/vigil/p.jsonl"], "--out"),
        (["--out", "/proc/self/status"], "--out"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(
    release: tuple[Path, Path, Path, Path], options: list[str], field: str
) -> None:
    root, _, onnx, _ = release
    line = one_clear_line(
        *run(str(root / IMAGES[0]), "--model", str(onnx), "--engine", "onnx", *options)
    )
    assert f"[{field}]" in line


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x08\x01\x12\x04junk"])
def test_a_garbage_onnx_is_one_line(
    release: tuple[Path, Path, Path, Path], tmp_path: Path, content: bytes
) -> None:
    root = release[0]
    bad = tmp_path / "model.onnx"
    bad.write_bytes(content)
    line = one_clear_line(*run(str(root / IMAGES[0]), "--engine", "onnx", "--model", str(bad)))
    assert "model.onnx" in line
    line = one_clear_line(
        *run(str(root / IMAGES[0]), "--engine", "onnx", "--model", str(tmp_path / "none.onnx"))
    )
    assert "not found" in line


def test_a_bad_image_among_good_ones_keeps_their_results(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    root, _, onnx, _ = release
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 60)
    (tmp_path / "folder.png").mkdir()
    images = [
        str(root / IMAGES[0]),
        str(tmp_path / "broken.png"),
        str(tmp_path / "missing.png"),
        str(tmp_path / "folder.png"),
        str(root / IMAGES[1]),
    ]
    code, stdout, stderr = run(*images, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001")
    records = [json.loads(line) for line in stdout]
    assert code == 1 and [r["image"] for r in records] == images
    assert [("error" in r) for r in records] == [False, True, True, True, False]
    assert records[0]["detections"] and records[4]["detections"]
    assert (
        "broken.png" in records[1]["error"]
        and "Traceback" not in stderr
        and "3 of 5 images failed" in stderr
    )


def test_out_writes_the_json_lines(release: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    root, _, onnx, _ = release
    out = tmp_path / "new" / "p.jsonl"
    code, stdout, _ = run(
        str(root / IMAGES[0]), "--engine", "onnx", "--model", str(onnx), "--out", str(out)
    )
    assert code == 0 and stdout == []
    assert json.loads(out.read_text().splitlines()[0])["image"] == str(root / IMAGES[0])
    line = one_clear_line(
        *run(
            str(root / IMAGES[0]),
            "--engine",
            "onnx",
            "--model",
            str(onnx),
            "--out",
            str(root / IMAGES[0]),
        )
    )
    assert "one of the inputs" in line


def test_stdout_holds_only_json_on_a_first_run(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    """A fresh folder and settings dir: ultralytics prints its settings banner, which must not reach stdout."""
    root, _, onnx, _ = release
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "fresh-config"), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vigil.cli",
            "predict",
            str(root / IMAGES[0]),
            "--engine",
            "onnx",
            "--model",
            str(onnx),
            "--conf",
            "0.001",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Settings" in proc.stderr  # the banner was printed, on stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["detections"]


def test_draw_writes_each_image_with_its_detections(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    import cv2

    root, _, onnx, calibration = release
    other = (
        tmp_path / "elsewhere" / "000.png"
    )  # the same stem as the first: drawn under another name
    other.parent.mkdir()
    other.write_bytes((root / IMAGES[0]).read_bytes())
    images = [str(root / IMAGES[0]), str(other), str(tmp_path / "missing.png")]
    draw = tmp_path / "drawn"
    code, stdout, _ = run(
        *images, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001",
        "--calibration", str(calibration), "--draw", str(draw),
    )  # fmt: skip
    records = [json.loads(line) for line in stdout]
    assert code == 1 and "error" in records[2] and "drawn" not in records[2]
    assert [Path(r["drawn"]).name for r in records[:2]] == ["000.jpg", "000-2.jpg"]
    assert sorted(p.name for p in draw.iterdir()) == ["000-2.jpg", "000.jpg"]
    picture = cv2.imread(records[0]["drawn"])
    plain = cv2.resize(
        cv2.imread(str(root / IMAGES[0])), (picture.shape[1], picture.shape[1] * 48 // 64)
    )
    assert records[0]["detections"] and picture.shape[1] >= 480
    # boxes drawn: the picture differs from the plain enlarged image well beyond JPEG noise
    assert np.abs(picture[: plain.shape[0]].astype(int) - plain).max() > 100


def test_draw_into_a_file_is_one_line_before_any_work(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    root, _, onnx, _ = release
    (tmp_path / "taken").write_text("x")
    line = one_clear_line(
        *run(
            str(root / IMAGES[0]),
            "--engine",
            "onnx",
            "--model",
            str(onnx),
            "--draw",
            str(tmp_path / "taken"),
        )
    )
    assert "[--draw]" in line


def image_width(path: str) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return int(im.size[0])


def expected_carried(raw_score: float, xyxy: list[float], width: int) -> float:
    """CARRIED by hand: σ(logit(s) − 3·cx), cx the box centre as a fraction of the image width."""
    cx = min(max((xyxy[0] + xyxy[2]) / 2 / width, 0.0), 1.0)
    z = np.log(raw_score) - np.log1p(-raw_score) - 3.0 * cx
    return float(1 / (1 + np.exp(-z)))


def test_an_onnx_model_applies_its_own_calibration_by_default_and_raw_switches_it_off(
    release: tuple[Path, Path, Path, Path],
) -> None:
    root, _, onnx, _ = release
    image = str(root / IMAGES[0])
    width = image_width(image)
    default = predict(image, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001")[0]
    raw = predict(image, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001", "--raw")[0]
    assert default["calibrated"] and default["calibration"] == f"{onnx} (metadata)"
    assert not raw["calibrated"] and raw["calibration"] is None
    assert [d["raw_score"] for d in default["detections"]] == [
        d["raw_score"] for d in raw["detections"]
    ]
    assert all(d["score"] == d["raw_score"] for d in raw["detections"])
    for d in default["detections"]:
        assert d["score"] == pytest.approx(
            expected_carried(d["raw_score"], d["xyxy"], width), rel=1e-3, abs=2e-5
        )
    assert any(abs(d["score"] - d["raw_score"]) > 1e-5 for d in default["detections"])


def test_raw_and_calibration_together_are_refused(release: tuple[Path, Path, Path, Path]) -> None:
    root, _, onnx, calibration = release
    line = one_clear_line(
        *run(
            str(root / IMAGES[0]),
            "--engine",
            "onnx",
            "--model",
            str(onnx),
            "--raw",
            "--calibration",
            str(calibration),
        )
    )
    assert "[--raw]" in line


def test_a_model_without_calibration_is_one_line_naming_the_ways_out(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    import onnx as onnx_lib

    root, checkpoint, onnx, _ = release
    bare = onnx_lib.load(str(onnx))
    kept = [p for p in bare.metadata_props if p.key != "vigil.calibration"]
    del bare.metadata_props[:]
    bare.metadata_props.extend(kept)
    onnx_lib.save(bare, str(tmp_path / "bare.onnx"))
    line = one_clear_line(
        *run(str(root / IMAGES[0]), "--engine", "onnx", "--model", str(tmp_path / "bare.onnx"))
    )
    assert "bare.onnx" in line and "[--calibration]" in line and "--raw" in line
    line = one_clear_line(
        *run(
            str(root / IMAGES[0]), "--engine", "torch", "--model", str(checkpoint), "--trust-pickle"
        )
    )
    assert "[--calibration]" in line and "student" in line


def test_torch_applies_the_students_calibration_by_default(
    release: tuple[Path, Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root, checkpoint, _, _ = release
    image = str(root / IMAGES[0])
    (tmp_path / "models" / "student").mkdir(parents=True)
    shutil.copyfile(checkpoint, tmp_path / "models" / "student" / "best.pt")
    monkeypatch.chdir(tmp_path)
    line = one_clear_line(*run(image, "--engine", "torch", "--trust-pickle"))
    assert "models/calibration.json" in line and "missing" in line
    (tmp_path / "models" / "calibration.json").write_text(json.dumps(CARRIED))
    out = predict(image, "--engine", "torch", "--trust-pickle", "--conf", "0.001")[0]
    assert out["calibrated"] and out["calibration"] == "models/calibration.json"
    width = image_width(image)
    for d in out["detections"]:
        assert d["score"] == pytest.approx(
            expected_carried(d["raw_score"], d["xyxy"], width), rel=1e-3, abs=2e-5
        )


def _range_file(base: Path, depth: Path | None = None) -> Path:
    """A range file for the tiny release: geometric at fy 400 (the 64x48 images), or depth via `depth`."""
    doc = {
        "format": 1,
        "method": "geometric" if depth is None else "depth",
        "classes": ["tshirt", "trouser", "bag"],
        "heights_m": {"tshirt": 0.7, "trouser": 1.0, "bag": 0.4},
        "camera": {"fx": 400.0, "fy": 400.0, "cx": 32.0, "cy": 24.0, "width": 64, "height": 48},
        "depth": None
        if depth is None
        else {"path": str(depth), "input_size": 56, "box_fraction": 0.5},
        "fit": {"scale": 0.5, "shift": 0.0, "fitted": True},
    }
    path = base / f"range_{doc['method']}.json"
    path.write_text(json.dumps(doc))
    return path


def test_predict_emits_range_m_per_box_and_no_range_omits_it(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    from range_helpers import tiny_depth_model

    root, _, onnx, _ = release
    image = str(root / IMAGES[0])
    common = (image, "--engine", "onnx", "--model", str(onnx), "--conf", "0.001")
    ranged = predict(*common, "--range", str(_range_file(tmp_path)))[0]
    assert ranged["detections"] and ranged["range"].endswith("range_geometric.json")
    heights = [0.7, 1.0, 0.4]
    for det in ranged["detections"]:
        tall_px = det["xyxy"][3] - det["xyxy"][1]
        expected = 400.0 * heights[det["class"]] / tall_px / 0.5  # 1 / (0.5 · h / (fy · H))
        assert (
            det["range_m"] is None
            if tall_px <= 0
            else det["range_m"] == pytest.approx(expected, rel=1e-2)
        )
    assert all("range_m" not in d for d in predict(*common, "--no-range")[0]["detections"])
    depth = _range_file(tmp_path, tiny_depth_model(tmp_path / "depth"))
    code, stdout, stderr = run(*common, "--range", str(depth))
    assert code == 0 and len(stdout) == 1, stderr  # stdout: the JSON line alone
    deep = json.loads(stdout[0])
    assert deep["detections"] and all(
        d["range_m"] is None or d["range_m"] > 0 for d in deep["detections"]
    )
    assert any(d["range_m"] for d in deep["detections"])


def test_a_bad_range_file_is_one_clear_line(
    release: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    root, _, onnx, _ = release
    bad = tmp_path / "range.json"
    bad.write_text(json.dumps({"format": 1, "method": "geometric"}))
    line = one_clear_line(
        *run(str(root / IMAGES[0]), "--engine", "onnx", "--model", str(onnx), "--range", str(bad))
    )
    assert "[--range]" in line and "fit {scale, shift}" in line
