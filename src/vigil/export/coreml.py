"""CoreML (.mlpackage) as an app deploys it: detector → NonMaximumSuppression pipeline, FP16 and INT8 weights.

Built with ultralytics' exporter (`nms=True`): an ML program (the FP16 detector: class scores and
boxes normalized to the input) chained to CoreML's NonMaximumSuppression model, which outputs
`confidence` (boxes × class columns) and `coordinates` (boxes × [x, y, width, height], relative).
For an ML program ultralytics pads the class columns to a multiple of 80 (an Apple NMS bug,
ultralytics#22309): the padded columns score 0 and carry labels "3", "4", …, after the real ones.

The NMS layer's IoU threshold is `export.iou`; its confidence threshold is the raw score at which the
calibration's keep rule keeps a box (`vigil.export.nms_threshold`). The scores it outputs stay raw:
the calibration mapping rides in the package's user-defined metadata (`vigil.calibration`) for the
host app, beside `vigil.nms` (what the NMS layer applies and what is left to the host).

INT8: the detector's weights are linearly quantized (per channel, symmetric) and the pipeline is
rebuilt around it (coremltools optimizes ML programs, not pipelines). Prediction needs macOS: on
Linux the packages are checked from their specs (`vigil.export.coreml_check`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil.export.embedded_calibration import METADATA_KEY, metadata_text
from vigil.export.exporter import ultralytics_export
from vigil.export.params import CoremlAbout

NAME = "coreml"
NMS_KEY = "vigil.nms"  # user-defined metadata: the NMS layer's thresholds and what the host applies


def unavailable() -> str | None:
    try:
        import coremltools  # noqa: F401
    except ImportError as exc:
        return f"coremltools not importable: {exc}"
    return None


def export_coreml(weights: Path, out: Path, *, imgsz: int, confidence: float, iou: float) -> Path:
    """FP16 detector → NMS pipeline of `weights` at `out`, NMS at raw `confidence` and `iou`."""
    return ultralytics_export(
        weights,
        out,
        format="coreml",
        imgsz=imgsz,
        quantize=16,
        nms=True,
        conf=confidence,
        iou=iou,
        agnostic_nms=False,  # per class, as vigil's own inference
        device="cpu",
    )


def rewrite(package: Path, change: Callable[[Any], Any]) -> Path:
    """Load `package`, let `change(model)` return the model to save, save it beside and swap it in."""
    import coremltools as ct

    model = change(ct.models.MLModel(str(package), skip_model_load=True))
    with tempfile.TemporaryDirectory(prefix="vigil-coreml-", dir=package.parent) as tmp:
        staged = Path(tmp) / package.name
        model.save(str(staged))
        shutil.rmtree(package)
        shutil.move(str(staged), package)
    return package


def quantize_weights_int8(package: Path, out: Path) -> Path:
    """A copy of the pipeline `package` at `out` whose detector has INT8 (per-channel, symmetric) weights."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    model = ct.models.MLModel(str(package), skip_model_load=True)
    spec = model.get_spec()
    detector = ct.models.MLModel(
        spec.pipeline.models[0], weights_dir=model.weights_dir, skip_model_load=True
    )
    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
    )
    quantized = cto.linear_quantize_weights(detector, config)
    spec.pipeline.models[0].CopyFrom(quantized.get_spec())
    # INT8 weights need a newer spec than the FP16 detector's: the pipeline states the highest
    spec.specificationVersion = max(m.specificationVersion for m in [spec, *spec.pipeline.models])
    shutil.rmtree(out, ignore_errors=True)
    ct.models.MLModel(spec, weights_dir=quantized.weights_dir, skip_model_load=True).save(str(out))
    return out


def stamp(package: Path, mapping: dict[str, Any], about: CoremlAbout, nms: dict[str, Any]) -> Path:
    """Write the app-facing metadata: author, version, description, license, the mapping and the NMS record."""

    def change(model: Any) -> Any:
        model.author, model.version = about.author, about.version
        model.short_description, model.license = about.description, about.license
        model.user_defined_metadata[METADATA_KEY] = metadata_text(mapping)
        model.user_defined_metadata[NMS_KEY] = metadata_text(nms)
        return model

    return rewrite(package, change)
