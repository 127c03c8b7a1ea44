"""Per-format pieces: INT8 node exclusion found from the graph, parity matching, the CoreML package check."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_helpers import tiny_release
from vigil.detection.types import ImageDetections
from vigil.errors import VigilError
from vigil.export import coreml
from vigil.export.onnx_fp32 import export_onnx
from vigil.export.onnx_int8 import excluded_nodes, head_prefix
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


@pytest.mark.trains
def test_coreml_package_structure_inputs_outputs_and_metadata(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    if coreml.unavailable():
        pytest.skip(coreml.unavailable())
    package = coreml.export_coreml(tiny[0], tmp_path / "m.mlpackage", imgsz=64)
    mapping = {"schema": "vigil.calibration/2", "global": {"x": [0.0, 1.0], "y": [0.0, 0.5]}}
    bare = coreml.inspect_package(package, imgsz=64, classes=3, calibration=mapping)
    assert bare["problems"] == ["metadata lacks 'vigil.calibration'"]
    coreml.embed_calibration(package, mapping)
    report = coreml.inspect_package(package, imgsz=64, classes=3, calibration=mapping)
    assert report["valid"], report["problems"]
    assert report["calibration"] is True
    other = coreml.inspect_package(package, imgsz=64, classes=3, calibration={"schema": "x"})
    assert other["problems"] == ["its 'vigil.calibration' is not the mapping given"]
    assert report["model_type"] == "mlProgram"
    assert report["inputs"] == [{"name": "image", "type": "imageType", "shape": [64, 64]}]
    assert report["outputs"][0]["shape"] == [1, 7, 84]
    assert {"names", "imgsz", "stride"} <= set(report["metadata"])
    assert report["prediction"].startswith(("run", "not run"))
    packed = coreml.quantize_weights_int8(package, tmp_path / "m_int8.mlpackage")
    coreml.embed_calibration(packed, mapping)
    assert coreml.inspect_package(packed, imgsz=64, classes=3, calibration=mapping)["valid"]
    wrong = coreml.inspect_package(package, imgsz=96, classes=5, calibration=None)
    assert not wrong["valid"] and len(wrong["problems"]) == 2
    (package / "Manifest.json").unlink()
    assert coreml.inspect_package(package, imgsz=64, classes=3, calibration=None)["problems"] == [
        "missing Manifest.json"
    ]
