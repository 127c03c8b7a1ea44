"""Apply `models/calibration.json` — numpy only, so any runtime (ONNX, CoreML host code, a service) can.

Schema `vigil.calibration/2` (written by the calibrate stage; `/1` files are still read). Per class
plus a global entry, each a lookup table: knots `x` and `y`, both strictly increasing, applied by
linear interpolation with the input clipped to [0, 1]. A class whose entry has no knots (too few val
detections to fit its own) — or a class id not in the file at all — uses the global entry.

An entry of the position-aware method also has `shift`: one weight per name in the file's top-level
`features` (box geometry: `cx`, `cy`, `w`, `h`, each a fraction of the image side, clipped to
[0, 1]). Its table is applied to the shifted score σ(logit(s) + Σ shift_k · feature_k), with s
clipped to [`logit_eps`, 1 − `logit_eps`] first. So the calibrated score depends on where the box
is and how big it is, and is no longer a monotone function of the raw score alone.

Which boxes are kept: `keep.score` is `raw` (keep a box when its raw score >= `keep.threshold`: the
boxes kept are exactly those kept before calibration, whatever the mapping) or `calibrated` (keep it
when its calibrated score >= `keep.threshold`: the kept set changes, and the calibrate stage counts
by how much). A `/1` file keeps a box when its calibrated score >= its entry's `threshold`.

Porting to another language: pick the entry; if it has a shift, shift the score; clip; interpolate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from vigil.detection.boxes import xyxy_to_yolo
from vigil.metrics.matching import BOX_DIMS

SCHEMA = "vigil.calibration/2"
SCHEMA_V1 = "vigil.calibration/1"
SCHEMAS: tuple[str, ...] = (SCHEMA_V1, SCHEMA)
BOX_FEATURES: tuple[str, ...] = BOX_DIMS  # cx cy w h: the columns of `boxes` below
KEEP_SCORES: tuple[str, ...] = ("raw", "calibrated")
LOGIT_EPS = 1e-6  # a score is clipped to [ε, 1 − ε] before its logit (written into every /2 file)


class MappingError(ValueError):
    """A mapping that cannot be applied; `where` names the part (e.g. `classes.3.shift`)."""

    def __init__(self, where: str, message: str) -> None:
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}" if where else message)


def box_geometry(xyxy: Any, width: float, height: float) -> np.ndarray:
    """(n, 4) cx cy w h of x1 y1 x2 y2 pixel boxes, as fractions of a width × height image, clipped to [0, 1]."""
    return np.clip(xyxy_to_yolo(xyxy, width, height), 0.0, 1.0)


def logit(scores: Any) -> np.ndarray:
    s = np.clip(np.asarray(scores, dtype=np.float64), LOGIT_EPS, 1 - LOGIT_EPS)
    return np.log(s) - np.log1p(-s)


def shifted_scores(scores: Any, boxes: Any, features: list[str], shift: Any) -> np.ndarray:
    """σ(logit(s) + Σ_k shift_k · box[feature_k]): the score a position-aware entry's table reads."""
    columns = np.asarray(boxes, dtype=np.float64).reshape(-1, len(BOX_FEATURES))
    picked = columns[:, [BOX_FEATURES.index(f) for f in features]]
    z = logit(scores) + picked @ np.asarray(shift, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-z))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_table(entry: Any, where: str, version: str, features: list[str]) -> None:
    if not isinstance(entry, dict):
        raise MappingError(where, "an entry must be an object")
    if version == SCHEMA_V1 and not _number(entry.get("threshold")):
        raise MappingError(where, "each table needs a numeric `threshold`")
    if where != "global" and "x" not in entry and "y" not in entry:
        return  # a class that uses the global entry
    x, y = entry.get("x"), entry.get("y")
    if not (
        isinstance(x, list)
        and isinstance(y, list)
        and len(x) == len(y) >= 2
        and all(_number(v) for v in [*x, *y])
        and all(a < b for a, b in zip(x, x[1:], strict=False))
    ):
        raise MappingError(
            where,
            "its knots x, y must be equal-length lists (2 or more) of numbers, x strictly increasing",
        )
    shift = entry.get("shift")
    if shift is not None and (
        version == SCHEMA_V1
        or not isinstance(shift, list)
        or len(shift) != len(features)
        or not all(_number(v) for v in shift)
    ):
        raise MappingError(
            f"{where}.shift", f"must be a list of {len(features)} numbers, one per `features` name"
        )


def check_mapping(mapping: Any) -> None:
    """Raise `MappingError` unless every entry `calibrate_detections` may pick can be applied."""
    if not isinstance(mapping, dict) or mapping.get("schema") not in SCHEMAS:
        found = mapping.get("schema") if isinstance(mapping, dict) else type(mapping).__name__
        raise MappingError("schema", f"not a {' or '.join(SCHEMAS)} mapping (found {found!r})")
    version = mapping["schema"]
    features: list[str] = []
    if version == SCHEMA:
        features = mapping.get("features")  # type: ignore[assignment]
        if not isinstance(features, list) or not all(f in BOX_FEATURES for f in features):
            raise MappingError("features", f"must be a list of names from {list(BOX_FEATURES)}")
        keep = mapping.get("keep")
        if (
            not isinstance(keep, dict)
            or keep.get("score") not in KEEP_SCORES
            or not _number(keep.get("threshold"))
        ):
            raise MappingError(
                "keep", "needs `score` (raw or calibrated) and a numeric `threshold`"
            )
        if not _number(mapping.get("logit_eps")) or not 0 < mapping["logit_eps"] < 0.5:
            raise MappingError("logit_eps", "must be a number in (0, 0.5)")
    classes = mapping.get("classes", {})
    if not isinstance(mapping.get("global"), dict) or not isinstance(classes, dict):
        raise MappingError("", "a mapping needs a `global` entry and a `classes` object")
    _check_table(mapping["global"], "global", version, features)
    for key, entry in classes.items():
        _check_table(entry, f"classes.{key}", version, features)


def load_mapping(path: Path) -> dict[str, Any]:
    """Read a calibration mapping (schema /1 or /2) and check it whole; ValueError naming the file if bad."""
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
        check_mapping(mapping)
    except (ValueError, RecursionError) as exc:  # MappingError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path}: {exc}") from None
    return mapping


def needs_boxes(mapping: dict[str, Any]) -> bool:
    """Whether some entry is position-aware (then `boxes` must be given)."""
    entries = [mapping["global"], *mapping.get("classes", {}).values()]
    return any("shift" in e for e in entries)


def entry_for(mapping: dict[str, Any], class_id: int) -> dict[str, Any]:
    """The table that applies to `class_id`: its own when fitted, else the global one."""
    entry = mapping.get("classes", {}).get(str(int(class_id)))
    if entry is not None and "x" in entry:
        return entry
    return mapping["global"]


def apply_calibration(
    mapping: dict[str, Any], class_id: int, scores: Any, boxes: Any = None
) -> np.ndarray:
    """Calibrated scores of one class's raw `scores` (1-D); `boxes` (n, 4) cx cy w h when the entry shifts."""
    entry = entry_for(mapping, class_id)
    raw = np.asarray(scores, dtype=np.float64)
    if "shift" in entry:
        if boxes is None:
            raise ValueError("this calibration is position-aware: give the boxes (cx, cy, w, h)")
        raw = shifted_scores(raw, boxes, mapping["features"], entry["shift"])
    return np.interp(
        np.clip(raw, 0.0, 1.0),
        np.asarray(entry["x"], dtype=np.float64),
        np.asarray(entry["y"], dtype=np.float64),
    )


def calibrated_threshold(mapping: dict[str, Any], class_id: int) -> float:
    """A `/1` mapping's calibrated-space operating threshold of `class_id`."""
    entry = mapping.get("classes", {}).get(str(int(class_id)))
    return float((entry if entry is not None else mapping["global"])["threshold"])


def calibrate_detections(
    mapping: dict[str, Any], classes: Any, scores: Any, boxes: Any = None
) -> np.ndarray:
    """Calibrated scores of detections of mixed classes (1-D arrays of equal length, `boxes` (n, 4))."""
    classes = np.asarray(classes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    geometry = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty_like(scores)
    for cls in np.unique(classes):
        mask = classes == cls
        out[mask] = apply_calibration(
            mapping, int(cls), scores[mask], None if geometry is None else geometry[mask]
        )
    return out


def keep_mask(mapping: dict[str, Any], classes: Any, scores: Any, boxes: Any = None) -> np.ndarray:
    """Which detections (raw scores) are kept at the operating threshold after calibration."""
    classes = np.asarray(classes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if mapping["schema"] == SCHEMA_V1:
        calibrated = calibrate_detections(mapping, classes, scores)
        thresholds = np.array(
            [calibrated_threshold(mapping, int(c)) for c in classes], dtype=np.float64
        )
        return calibrated >= thresholds
    keep = mapping["keep"]
    judged = (
        scores if keep["score"] == "raw" else calibrate_detections(mapping, classes, scores, boxes)
    )
    return judged >= float(keep["threshold"])
