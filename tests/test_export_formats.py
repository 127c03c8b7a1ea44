"""Per-format pieces: INT8 node exclusion found from the graph, parity matching, the CoreML package check."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import CLASSES
from export_helpers import tiny_release
from repo_params import section
from vigil.detection.types import ImageDetections
from vigil.errors import VigilError
from vigil.export import coreml
from vigil.export.coreml_check import Expected, inspect_package
from vigil.export.export_stage import coreml_block, coreml_line
from vigil.export.onnx_fp32 import export_onnx
from vigil.export.onnx_int8 import excluded_nodes, head_prefix
from vigil.export.params import ExportParams
from vigil.export.parity import compare


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, its ONNX export)."""
    base = tmp_path_factory.mktemp("formats")
    _, checkpoint, _, _ = tiny_release(base)
    return checkpoint, export_onnx(
        checkpoint, base / "onnx" / "model.onnx", imgsz=64, opset=None, simplify=True
    )


def test_excluded_nodes_are_the_heads_post_processing(tiny: tuple[Path, Path]) -> None:
    import onnx

    model = onnx.load(str(tiny[1]))
    prefix = head_prefix(model)
    assert prefix == "/model.22/"
    post = excluded_nodes(model, "post")
    ops = {n.name: n.op_type for n in model.graph.node}
    assert {"Softmax", "Concat", "Sigmoid"} <= {
        ops[name] for name in post
    }  # DFL, concat, class sigmoid
    assert any("/dfl/" in name for name in post)
    assert not any(
        "/cv2." in name or "/cv3." in name for name in post
    )  # branch convs still quantized
    last = set(excluded_nodes(model, "post+last")) - set(post)
    assert len(last) == 6 and all(ops[name] == "Conv" for name in last)  # 3 scales × (box, class)
    assert excluded_nodes(model, "none") == []
    assert set(post) < set(excluded_nodes(model, "head"))
    with pytest.raises(VigilError, match="unknown exclusion"):
        excluded_nodes(model, "everything")


def test_parity_reports_shifted_and_missing_boxes() -> None:
    ref = [ImageDetections([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 1])]
    same = compare(ref, ref, iou=0.5)
    assert same["matched"] == 2 and same["max_abs_box_px"] == 0 and same["max_abs_score"] == 0
    moved = compare(ref, [ImageDetections([[0, 0, 10, 11]], [0.85], [0])], iou=0.5)
    assert moved["matched"] == 1 and moved["unmatched_reference"] == 1
    assert moved["max_abs_box_px"] == pytest.approx(1.0) and moved[
        "max_abs_score"
    ] == pytest.approx(0.05)
    other_class = compare(ref, [ImageDetections([[0, 0, 10, 10]], [0.9], [2])], iou=0.5)
    assert other_class["matched"] == 0 and other_class["unmatched_other"] == 1


# a calibrated keep rule with a position-aware class: the NMS threshold is a lower bound, host notes
MAPPING = {
    "schema": "vigil.calibration/2",
    "features": ["cx", "w"],
    "logit_eps": 1e-6,
    "keep": {"score": "calibrated", "threshold": 0.25},
    "global": {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.7, 1.0]},
    "classes": {"1": {"x": [0.0, 1.0], "y": [0.0, 1.0], "shift": [1.0, -0.5]}},
}


@pytest.fixture(scope="module")
def packages(
    tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Expected]:
    """The export stage's CoreML block (FP16 and INT8-weight pipelines) and what they must hold."""
    if coreml.unavailable():
        pytest.skip(str(coreml.unavailable()))
    params = section("export", ExportParams)
    out = tmp_path_factory.mktemp("coreml")
    block = coreml_block(tiny[0], out, params, 64, CLASSES, MAPPING)
    nms = block["nms"]
    expect = Expected(
        64, CLASSES, params.iou, nms["confidence_threshold"], params.coreml_about, MAPPING, nms
    )
    return block, expect


def edited(package: Path, tmp_path: Path, change: Callable[[Any], None]) -> Path:
    """A copy of `package` whose spec `change` edited in place."""
    import coremltools as ct

    copy = tmp_path / package.name
    shutil.copytree(package, copy)

    def rebuild(model: Any) -> Any:
        spec = model.get_spec()
        change(spec)
        return ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True)

    return coreml.rewrite(copy, rebuild)


@pytest.mark.trains
def test_both_packages_carry_nms_labels_and_metadata(
    packages: tuple[dict[str, Any], Expected],
) -> None:
    block, expect = packages
    assert block["status"] == "ok"
    assert block["nms"]["confidence_threshold"] == pytest.approx(0.109231)  # person's best geometry
    for name in ("fp16", "int8_weights"):
        report = block[name]
        assert report["valid"], report["problems"]
        assert report["model_type"] == "pipeline" and report["calibration"] is True
        assert report["inputs"][0] == {"name": "image", "type": "imageType", "shape": [64, 64]}
        assert [o["name"] for o in report["outputs"]] == ["confidence", "coordinates"]
        assert report["outputs"][0]["shape"] == [[0, -1], [80, 80]]  # 3 classes padded to 80
        assert report["nms"]["labels"] == CLASSES and report["nms"]["iou_threshold"] == 0.7
        assert report["about"]["version"] == expect.about.version
        assert report["prediction"].startswith("not run")
    assert block["int8_weights"]["size_mb"] < 0.6 * block["fp16"]["size_mb"]
    assert block["int8_weights"]["nms"]["spec_versions"] == [7, 6]  # INT8 weights need spec 7
    assert block["int8_weights"]["spec_version"] == 7
    assert "NMS inside at raw confidence 0.109231 and IoU 0.7" in coreml_line(block)


def _set_nms(field: str, value: Any) -> Callable[[Any], None]:
    def change(spec: Any) -> None:
        setattr(spec.pipeline.models[1].nonMaximumSuppression, field, value)

    return change


def _swap_labels(spec: Any) -> None:
    labels = spec.pipeline.models[1].nonMaximumSuppression.stringClassLabels.vector
    labels[0], labels[1] = labels[1], labels[0]


def _agnostic(spec: Any) -> None:
    spec.pipeline.models[1].nonMaximumSuppression.pickTop.perClass = False


def _rename_output(spec: Any) -> None:
    spec.description.output[0].name = "scores"


def _old_spec(spec: Any) -> None:
    spec.specificationVersion = 6


def _author(spec: Any) -> None:
    spec.description.metadata.author = "someone else"


def _detector_only(spec: Any) -> None:
    detector = type(spec)()
    detector.CopyFrom(spec.pipeline.models[0])
    spec.CopyFrom(detector)


def _drop_nms_record(spec: Any) -> None:
    del spec.description.metadata.userDefined["vigil.nms"]


@pytest.mark.trains
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_set_nms("iouThreshold", 0.45), "NMS IoU threshold is 0.45, expected 0.7"),
        (_set_nms("confidenceThreshold", 0.25), "NMS confidence threshold is 0.25, expected"),
        (_swap_labels, "NMS class labels ['trouser', 'tshirt', 'bag', '3']… (80) are not"),
        (_agnostic, "NMS is class-agnostic, expected per class"),
        (_rename_output, "expected outputs confidence (N, 80), coordinates (N, 4), got"),
        (_old_spec, "pipeline spec version 6 is below its models' [7, 6]"),
        (_author, "metadata author is 'someone else', expected 'vigil'"),
        (_drop_nms_record, "metadata lacks 'vigil.nms'"),
    ],
)
def test_each_package_check_fails_on_a_package_that_differs(
    packages: tuple[dict[str, Any], Expected],
    tmp_path: Path,
    change: Callable[[Any], None],
    problem: str,
) -> None:
    block, expect = packages
    package = edited(Path(block["int8_weights"]["file"]), tmp_path, change)
    problems = inspect_package(package, expect)["problems"]
    assert len(problems) == 1 and problems[0].startswith(problem), problems


@pytest.mark.trains
def test_each_expectation_fails_on_the_shipped_package(
    packages: tuple[dict[str, Any], Expected], tmp_path: Path
) -> None:
    block, expect = packages
    package = Path(block["fp16"]["file"])
    for changes, problem in (
        (
            {"imgsz": 96},
            "expected inputs {'name': 'image', 'type': 'imageType', 'shape': [96, 96]}",
        ),
        (
            {"class_names": ["tshirt", "trouser", "shoe"]},
            "NMS class labels ['tshirt', 'trouser', 'bag'",
        ),
        ({"calibration": {"schema": "x"}}, "its 'vigil.calibration' is not the one given"),
        ({"nms": {"iou_threshold": 0.5}}, "its 'vigil.nms' is not the one given"),
    ):
        problems = inspect_package(package, replace(expect, **changes))["problems"]
        assert problems and problems[0].startswith(problem), (changes, problems)
    detector = edited(package, tmp_path / "bare", _detector_only)  # the export before NMS went in
    assert (
        "expected a pipeline model (detector → NMS), got mlProgram"
        in (inspect_package(detector, expect)["problems"])
    )
    copy = tmp_path / "broken.mlpackage"
    shutil.copytree(package, copy)
    (copy / "Manifest.json").unlink()
    assert inspect_package(copy, expect)["problems"] == ["missing Manifest.json"]
