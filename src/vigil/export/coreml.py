"""CoreML (.mlpackage, FP16; INT8 weights via coremltools' linear quantization) — validated, not run.

CoreML prediction needs macOS; on Linux the package is built and its structure, inputs, outputs and
metadata are checked from the spec, and the record says `prediction: "not run (macOS only)"`.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Any

from vigil.export.exporter import ultralytics_export

NAME = "coreml"


def unavailable() -> str | None:
    try:
        import coremltools  # noqa: F401
    except ImportError as exc:
        return f"coremltools not importable: {exc}"
    return None


def export_coreml(weights: Path, out: Path, *, imgsz: int) -> Path:
    """FP16 .mlpackage of `weights` at `out` (ultralytics' exporter, NMS not embedded: raw head output)."""
    return ultralytics_export(
        weights, out, format="coreml", imgsz=imgsz, half=True, nms=False, device="cpu"
    )


def quantize_weights_int8(package: Path, out: Path) -> Path:
    """INT8 (per-channel, symmetric linear) weights of an ML program package."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    model = ct.models.MLModel(str(package), skip_model_load=True)
    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
    )
    shutil.rmtree(out, ignore_errors=True)
    cto.linear_quantize_weights(model, config).save(str(out))
    return out


def inspect_package(package: Path, *, imgsz: int, classes: int) -> dict[str, Any]:
    """Structure, inputs, outputs and metadata of a package, with `problems` listing what is wrong (empty = valid)."""
    import coremltools as ct

    problems = []
    for part in ("Manifest.json", "Data/com.apple.CoreML/model.mlmodel"):
        if not (package / part).is_file():
            problems.append(f"missing {part}")
    if problems:
        return {"valid": False, "problems": problems}
    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    inputs = [
        {
            "name": i.name,
            "type": i.type.WhichOneof("Type"),
            "shape": [i.type.imageType.height, i.type.imageType.width]
            if i.type.HasField("imageType")
            else None,
        }
        for i in spec.description.input
    ]
    outputs = [
        {
            "name": o.name,
            "type": o.type.WhichOneof("Type"),
            "shape": list(o.type.multiArrayType.shape)
            if o.type.HasField("multiArrayType")
            else None,
        }
        for o in spec.description.output
    ]
    metadata = dict(spec.description.metadata.userDefined)
    if len(inputs) != 1 or inputs[0]["type"] != "imageType" or inputs[0]["shape"] != [imgsz, imgsz]:
        problems.append(f"expected one {imgsz}x{imgsz} image input, got {inputs}")
    if len(outputs) != 1 or (outputs[0]["shape"] and outputs[0]["shape"][1] != 4 + classes):
        problems.append(f"expected one (1, {4 + classes}, anchors) output, got {outputs}")
    for key in ("names", "imgsz", "stride"):
        if key not in metadata:
            problems.append(f"metadata lacks {key!r}")
    return {
        "valid": not problems,
        "problems": problems,
        "spec_version": spec.specificationVersion,
        "model_type": spec.WhichOneof("Type"),
        "inputs": inputs,
        "outputs": outputs,
        "metadata": {
            k: metadata[k] for k in sorted(metadata) if k in ("names", "imgsz", "stride", "task")
        },
        "prediction": "run"
        if platform.system() == "Darwin"
        else "not run (CoreML prediction is macOS-only)",
    }
