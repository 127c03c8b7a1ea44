"""CoreML (.mlpackage, FP16; INT8 weights via coremltools' linear quantization) — validated, not run.

CoreML prediction needs macOS; on Linux the package is built and its structure, inputs, outputs and
metadata are checked from the spec, and the record says `prediction: "not run (macOS only)"`. The
calibration mapping rides in the package's user-defined metadata under `vigil.calibration`
(`vigil.export.embedded_calibration`), for the app's host code to apply after NMS.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vigil.export.embedded_calibration import METADATA_KEY, metadata_text
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


def embed_calibration(package: Path, mapping: dict[str, Any]) -> Path:
    """Write `mapping` into the package's user-defined metadata (saved beside, then swapped in)."""
    import coremltools as ct

    model = ct.models.MLModel(str(package), skip_model_load=True)
    model.user_defined_metadata[METADATA_KEY] = metadata_text(mapping)
    with tempfile.TemporaryDirectory(prefix="vigil-coreml-", dir=package.parent) as tmp:
        staged = Path(tmp) / package.name
        model.save(str(staged))
        shutil.rmtree(package)
        shutil.move(str(staged), package)
    return package


def inspect_package(
    package: Path, *, imgsz: int, classes: int, calibration: dict[str, Any] | None
) -> dict[str, Any]:
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
    if calibration is not None:
        carried = metadata.get(METADATA_KEY)
        if carried is None:
            problems.append(f"metadata lacks {METADATA_KEY!r}")
        elif json.loads(carried) != calibration:
            problems.append(f"its {METADATA_KEY!r} is not the mapping given")
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
        "calibration": METADATA_KEY in metadata,
        "prediction": "run"
        if platform.system() == "Darwin"
        else "not run (CoreML prediction is macOS-only)",
    }
