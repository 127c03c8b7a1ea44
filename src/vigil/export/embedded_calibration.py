"""The calibration mapping carried inside the exported models, and applied to one image's detections.

Every export carries `models/calibration.json` whole, as metadata under the key `vigil.calibration`
(ONNX `metadata_props`, CoreML `userDefined` metadata), not as graph nodes. Why metadata:

- the graph's output is the raw head (1, 4 + classes, anchors), *before* NMS; the mapping applies to
  the boxes NMS keeps, with their geometry as fractions of the *original* image, which the graph
  never sees (it sees the letterboxed tensor). In-graph, a per-class map would also change which
  class wins an anchor and which boxes pass the confidence floor: not the same boxes any more;
- the INT8 graph would need those nodes kept float and re-validated per recipe;
- one numpy function (`vigil.release.mapping`) then applies it for every engine — PyTorch, ONNX
  FP32, ONNX INT8 — so their calibrated scores differ only by their raw scores and boxes, which the
  export stage's parity and the parity test measure.

A runtime outside vigil reads the JSON from the model's metadata and ports the few lines of
`vigil.release.mapping` (its `apply` field spells them out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vigil.detection.types import ImageDetections
from vigil.errors import VigilError
from vigil.release.mapping import (
    MappingError,
    box_geometry,
    calibrate_detections,
    check_mapping,
    keep_mask,
)

METADATA_KEY = "vigil.calibration"
HINT = "give models/calibration.json, written by the calibrate stage"


def _checked(mapping: Any, path: Path, field: str, hint: str) -> dict[str, Any]:
    try:
        check_mapping(mapping)
    except MappingError as exc:
        where = f"{field} {exc.where}" if exc.where else field
        raise VigilError(exc.message, path=path, field=where, hint=hint) from None
    return mapping


def read_calibration(path: Path, field: str = "--calibration") -> dict[str, Any]:
    """A calibration mapping file, checked whole: every entry `mapping.py` may pick can be applied."""
    path = Path(path)
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VigilError(
            f"cannot read the calibration file: {exc.strerror or exc}",
            path=path,
            field=field,
            hint=HINT,
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VigilError(
            f"not a calibration mapping: not JSON ({type(exc).__name__})",
            path=path,
            field=field,
            hint=HINT,
        ) from None
    return _checked(mapping, path, field, HINT)


def from_metadata(metadata: dict[str, str], model: Path) -> dict[str, Any] | None:
    """The mapping a model carries in its metadata (None: it carries none), checked whole."""
    text = metadata.get(METADATA_KEY)
    if text is None:
        return None
    hint = "re-run the export stage, or give --calibration FILE (or --raw)"
    try:
        mapping = json.loads(text)
    except (ValueError, RecursionError):
        raise VigilError(
            f"its {METADATA_KEY} metadata is not JSON", path=model, field=METADATA_KEY, hint=hint
        ) from None
    return _checked(mapping, model, METADATA_KEY, hint)


def metadata_text(mapping: dict[str, Any]) -> str:
    """The mapping as it is stored in a model: compact JSON, keys sorted (the same bytes every run)."""
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"))


def embed_onnx(path: Path, mapping: dict[str, Any]) -> None:
    """Write `mapping` into the ONNX file's metadata (replacing an earlier one); the graph is untouched."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=metadata_text(mapping))
    onnx.save(model, str(path))


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's metadata_props as a dict."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def calibrate_image(
    mapping: dict[str, Any], dets: ImageDetections, width: int, height: int
) -> tuple[ImageDetections, np.ndarray]:
    """One image's detections with calibrated scores (same boxes, same order), and which are kept."""
    boxes = box_geometry(dets.boxes, width, height)
    scores = calibrate_detections(mapping, dets.classes, dets.scores, boxes)
    keep = keep_mask(mapping, dets.classes, dets.scores, boxes)
    return ImageDetections(dets.boxes, scores, dets.classes), keep
