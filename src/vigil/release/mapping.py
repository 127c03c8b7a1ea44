"""Apply `models/calibration.json` — numpy only, so any runtime (ONNX, CoreML host code, a service) can.

The mapping is a lookup table per class plus a global one: knots `x` (raw score) and `y` (calibrated
score), both strictly increasing, applied by linear interpolation with scores clipped to [0, 1]. A
class whose entry has no knots (too few val detections to fit its own) — or a class id not in the
file at all — uses the global table. Every entry carries `threshold`: keep a box when its calibrated
score is >= the threshold of its class. With `operating_threshold.keep_same_boxes` true, that
threshold is the image of the raw operating threshold, so exactly the same boxes are kept as before
calibration (a strictly increasing map preserves `s >= t`); see `vigil.release.calibration_fit`.

Porting to another language is three lines: pick the entry, clip, interpolate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "vigil.calibration/1"


def load_mapping(path: Path) -> dict[str, Any]:
    """Read a calibration mapping and check its schema version."""
    mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(mapping, dict) or mapping.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a {SCHEMA} mapping (schema={mapping.get('schema')!r})")
    return mapping


def entry_for(mapping: dict[str, Any], class_id: int) -> dict[str, Any]:
    """The table that applies to `class_id`: its own when fitted, else the global one."""
    entry = mapping.get("classes", {}).get(str(int(class_id)))
    if entry is not None and "x" in entry:
        return entry
    return mapping["global"]


def apply_calibration(mapping: dict[str, Any], class_id: int, scores: Any) -> np.ndarray:
    """Calibrated scores of one class's raw `scores` (any shape), by linear interpolation of the knots."""
    entry = entry_for(mapping, class_id)
    raw = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    return np.interp(
        raw, np.asarray(entry["x"], dtype=np.float64), np.asarray(entry["y"], dtype=np.float64)
    )


def calibrated_threshold(mapping: dict[str, Any], class_id: int) -> float:
    """The calibrated-space operating threshold of `class_id`."""
    entry = mapping.get("classes", {}).get(str(int(class_id)))
    return float((entry if entry is not None else mapping["global"])["threshold"])


def calibrate_detections(mapping: dict[str, Any], classes: Any, scores: Any) -> np.ndarray:
    """Calibrated scores of detections of mixed classes (1-D arrays of equal length)."""
    classes = np.asarray(classes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    out = np.empty_like(scores)
    for cls in np.unique(classes):
        mask = classes == cls
        out[mask] = apply_calibration(mapping, int(cls), scores[mask])
    return out


def keep_mask(mapping: dict[str, Any], classes: Any, scores: Any) -> np.ndarray:
    """Which detections (raw scores) are kept at the operating threshold after calibration."""
    classes = np.asarray(classes, dtype=np.int64)
    calibrated = calibrate_detections(mapping, classes, scores)
    thresholds = np.array(
        [calibrated_threshold(mapping, int(c)) for c in classes], dtype=np.float64
    )
    return calibrated >= thresholds
