"""Check a CoreML detector → NMS package from its spec: structure, inputs, outputs, metadata, the NMS layer.

CoreML prediction needs macOS, so on Linux this is the whole validation of a package: every field an
app relies on is read back and compared with what the export meant to write (`Expected`). Each
difference is one line in `problems`; an empty list means valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.export.coreml import NMS_KEY
from vigil.export.embedded_calibration import METADATA_KEY, metadata_text
from vigil.export.params import CoremlAbout

PARTS = ("Manifest.json", "Data/com.apple.CoreML/model.mlmodel")
OUTPUTS = ("confidence", "coordinates")
OVERRIDES = ("iouThreshold", "confidenceThreshold")  # optional pipeline inputs CoreML allows
TOLERANCE = 1e-9
PREDICTION = "not run (CoreML prediction is macOS-only: time it on a Mac with `vigil bench coreml`)"


@dataclass(frozen=True)
class Expected:
    imgsz: int
    class_names: list[str]
    iou: float  # the NMS layer's IoU threshold
    confidence: float  # its raw confidence threshold
    about: CoremlAbout
    calibration: dict[str, Any] | None  # the mapping under `vigil.calibration` (None: not checked)
    nms: dict[str, Any] | None  # the record under `vigil.nms` (None: not checked)


def class_columns(classes: int) -> int:
    """Class columns of ultralytics' ML program NMS: padded to a multiple of 80 (ultralytics#22309)."""
    return -(-classes // 80) * 80


def _shape(feature: Any) -> list[Any] | None:
    """[h, w] of an image, the fixed shape or [[lo, hi], …] ranges of a multi-array, else None."""
    t = feature.type
    if t.HasField("imageType"):
        return [t.imageType.height, t.imageType.width]
    if t.HasField("multiArrayType"):
        ranges = t.multiArrayType.shapeRange.sizeRanges
        if ranges:
            return [[r.lowerBound, r.upperBound] for r in ranges]
        return list(t.multiArrayType.shape)
    return None


def _features(features: Any) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "type": f.type.WhichOneof("Type"), "shape": _shape(f)} for f in features
    ]


def _nms_problems(spec: Any, expect: Expected) -> tuple[list[str], dict[str, Any]]:
    """The pipeline's layout and NMS layer against `expect`; (problems, what was read)."""
    models = list(spec.pipeline.models)
    kinds = [m.WhichOneof("Type") for m in models]
    if kinds != ["mlProgram", "nonMaximumSuppression"]:
        return [f"expected a pipeline mlProgram → nonMaximumSuppression, got {kinds}"], {}
    problems = []
    detector, nms_model = models
    nms = nms_model.nonMaximumSuppression
    labels = list(nms.stringClassLabels.vector)
    names, columns = expect.class_names, class_columns(len(expect.class_names))
    read = {
        "iou_threshold": nms.iouThreshold,
        "confidence_threshold": nms.confidenceThreshold,
        "per_class": nms.pickTop.perClass,
        "labels": labels[: len(names)],
        "label_columns": len(labels),
        "spec_versions": [m.specificationVersion for m in models],
    }
    if abs(nms.iouThreshold - expect.iou) > TOLERANCE:
        problems.append(f"NMS IoU threshold is {nms.iouThreshold}, expected {expect.iou}")
    if abs(nms.confidenceThreshold - expect.confidence) > TOLERANCE:
        problems.append(
            f"NMS confidence threshold is {nms.confidenceThreshold}, expected {expect.confidence}"
        )
    if not nms.pickTop.perClass:
        problems.append("NMS is class-agnostic, expected per class")
    if labels[: len(names)] != names or len(labels) != columns:
        problems.append(
            f"NMS class labels {labels[: len(names) + 1]}… ({len(labels)}) are not the classes "
            f"{names} padded to {columns}"
        )
    wired = [nms.confidenceInputFeatureName, nms.coordinatesInputFeatureName]
    if wired != [o.name for o in detector.description.output]:
        problems.append(f"NMS reads {wired}, not the detector's outputs")
    if [nms.confidenceOutputFeatureName, nms.coordinatesOutputFeatureName] != list(OUTPUTS):
        problems.append(f"NMS does not write {list(OUTPUTS)}")
    if spec.specificationVersion < max(read["spec_versions"]):
        problems.append(
            f"pipeline spec version {spec.specificationVersion} is below its models' "
            f"{read['spec_versions']}"
        )
    return problems, read


def _metadata_problems(spec: Any, expect: Expected) -> list[str]:
    meta = spec.description.metadata
    user = dict(meta.userDefined)
    problems = []
    stated = {
        "author": meta.author,
        "version": meta.versionString,
        "description": meta.shortDescription,
        "license": meta.license,
    }
    for key, value in stated.items():
        if value != getattr(expect.about, key):
            problems.append(f"metadata {key} is {value!r}, expected {getattr(expect.about, key)!r}")
    problems += [
        f"metadata lacks {key!r}" for key in ("names", "imgsz", "stride") if key not in user
    ]
    for key, want in ((METADATA_KEY, expect.calibration), (NMS_KEY, expect.nms)):
        if want is None:
            continue
        if key not in user:
            problems.append(f"metadata lacks {key!r}")
        elif json.loads(user[key]) != json.loads(metadata_text(want)):
            problems.append(f"its {key!r} is not the one given")
    return problems


def inspect_package(package: Path, expect: Expected) -> dict[str, Any]:
    """Structure, inputs, outputs, metadata and NMS spec of a package; `problems` lists what is wrong."""
    import coremltools as ct

    problems = [f"missing {part}" for part in PARTS if not (package / part).is_file()]
    if problems:
        return {"valid": False, "problems": problems}
    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    inputs, outputs = _features(spec.description.input), _features(spec.description.output)
    kind = spec.WhichOneof("Type")
    image = {"name": "image", "type": "imageType", "shape": [expect.imgsz, expect.imgsz]}
    if not inputs or inputs[0] != image or [i["name"] for i in inputs[1:]] != list(OVERRIDES):
        problems.append(f"expected inputs {image} + {list(OVERRIDES)}, got {inputs}")
    columns = class_columns(len(expect.class_names))
    want = [
        {"name": "confidence", "type": "multiArrayType", "shape": [[0, -1], [columns, columns]]},
        {"name": "coordinates", "type": "multiArrayType", "shape": [[0, -1], [4, 4]]},
    ]
    if outputs != want:
        problems.append(
            f"expected outputs confidence (N, {columns}), coordinates (N, 4), got {outputs}"
        )
    nms: dict[str, Any] = {}
    if kind != "pipeline":
        problems.append(f"expected a pipeline model (detector → NMS), got {kind}")
    else:
        found, nms = _nms_problems(spec, expect)
        problems += found
    problems += _metadata_problems(spec, expect)
    user = dict(spec.description.metadata.userDefined)
    return {
        "valid": not problems,
        "problems": problems,
        "spec_version": spec.specificationVersion,
        "model_type": kind,
        "inputs": inputs,
        "outputs": outputs,
        "nms": nms,
        "metadata": {k: user[k] for k in sorted(user) if k in ("names", "imgsz", "stride", "task")},
        "about": {
            "author": spec.description.metadata.author,
            "version": spec.description.metadata.versionString,
            "description": spec.description.metadata.shortDescription,
            "license": spec.description.metadata.license,
        },
        "calibration": METADATA_KEY in user,
        "prediction": PREDICTION,
    }
