"""The raw confidence threshold an in-model NMS layer gets, so that it keeps what the calibration keeps.

A CoreML NMS layer (`vigil.export.coreml`) has one confidence threshold, compared with the raw
class scores. The deployed keep rule lives in the calibration mapping (`vigil.release.mapping`):
`keep.score` raw → a box is kept when its raw score >= `keep.threshold` (the same boxes as before
calibration); `calibrated` (and every `/1` file) → when its calibrated score >= the threshold.

For a calibrated rule each class's table is inverted: the lowest raw score whose calibrated value
reaches the threshold. That threshold is exact when the class's table is non-decreasing (every
higher raw score also reaches it) and a lower bound otherwise. A position-aware entry reads the
score shifted by box geometry the graph never sees (fractions of the original image), so its
threshold is the lowest raw score that *some* box geometry lifts to the threshold: a lower bound,
the host app applies the exact rule. With one threshold for all classes the layer gets the lowest
class's; classes with a higher one are filtered by the host. NMS therefore never drops a box the
mapping keeps; `exact` says whether it also keeps no box the mapping drops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vigil.export.embedded_calibration import METADATA_KEY
from vigil.release.mapping import SCHEMA_V1, calibrated_threshold, entry_for

DIGITS = 6  # thresholds are rounded down to this many decimals: the NMS layer keeps a superset


def _floor(value: float) -> float:
    return math.floor(value * 10**DIGITS) / 10**DIGITS


def lowest_reaching(x: list[float], y: list[float], target: float) -> float | None:
    """The smallest s in [0, 1] with interp(s, x, y) >= target (the table as `mapping` applies it); None if none."""
    inner = [v for v in x if 0.0 < v < 1.0]
    xs = np.array([0.0, *inner, 1.0])
    ys = np.interp(xs, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    if ys[0] >= target:
        return 0.0
    for i in range(len(xs) - 1):
        if ys[i + 1] >= target:  # ys[i] < target: the crossing lies in this segment
            return float(xs[i] + (target - ys[i]) * (xs[i + 1] - xs[i]) / (ys[i + 1] - ys[i]))
    return None


def _keep_rule(mapping: dict[str, Any], class_id: int) -> tuple[str, float]:
    if mapping["schema"] == SCHEMA_V1:
        return "calibrated", calibrated_threshold(mapping, class_id)
    return str(mapping["keep"]["score"]), float(mapping["keep"]["threshold"])


def class_threshold(mapping: dict[str, Any], class_id: int) -> dict[str, Any]:
    """One class's raw threshold: `raw` (None: no raw score is kept), `exact`, `how` in words, and its `target`."""
    space, target = _keep_rule(mapping, class_id)
    return {"target": target} | _inverted(mapping, class_id, space, target)


def _inverted(mapping: dict[str, Any], class_id: int, space: str, target: float) -> dict[str, Any]:
    if space == "raw":
        return {"raw": target, "exact": True, "how": f"keep rule is raw >= {target}"}
    entry = entry_for(mapping, class_id)
    lowest = lowest_reaching(entry["x"], entry["y"], target)
    monotone = bool(np.all(np.diff(entry["y"]) >= 0))
    if lowest is None:
        return {"raw": None, "exact": True, "how": f"no score reaches calibrated {target}"}
    if "shift" in entry:
        best = sum(max(float(w), 0.0) for w in entry["shift"])  # features lie in [0, 1]
        z = math.log(max(lowest, 1e-12)) - math.log1p(-min(lowest, 1 - 1e-12)) - best
        return {
            "raw": _floor(1.0 / (1.0 + math.exp(-z))),
            "exact": False,
            "how": f"position-aware: lowest raw score any box geometry lifts to calibrated {target}",
        }
    return {
        "raw": _floor(lowest),
        "exact": monotone,
        "how": f"inverse of its {'monotone' if monotone else 'non-monotone'} table at calibrated {target}",
    }


def nms_confidence(mapping: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """The NMS layer's raw confidence threshold for `class_names`, and what is left to the host app."""
    per_class = {name: class_threshold(mapping, i) for i, name in enumerate(class_names)}
    reachable = [c["raw"] for c in per_class.values() if c["raw"] is not None]
    threshold = min(reachable) if reachable else 1.0
    targets = {c["target"] for c in per_class.values()}
    host = [
        f"{name}: keep raw >= {c['raw']} (the layer keeps from {threshold})"
        for name, c in per_class.items()
        if c["raw"] is not None and c["raw"] > threshold
    ]
    host += [f"{name}: {c['how']}" for name, c in per_class.items() if not c["exact"]]
    host += [
        f"{name}: drop every box ({c['how']})" for name, c in per_class.items() if c["raw"] is None
    ]
    return {
        "threshold": threshold,
        "keep_score": _keep_rule(mapping, 0)[0],
        "keep_threshold": targets.pop() if len(targets) == 1 else None,  # /1 files: per class
        "exact": not host,
        "per_class": per_class,
        "host_applies": host,
    }


def nms_record(mapping: dict[str, Any], class_names: list[str], iou: float) -> dict[str, Any]:
    """What an in-model NMS layer applies of the deployed rule, and what it leaves to the host app."""
    conf = nms_confidence(mapping, class_names)
    rule = (
        f"raw score >= {conf['keep_threshold']}"
        if conf["keep_score"] == "raw"
        else f"calibrated score >= {conf['keep_threshold'] if conf['keep_threshold'] is not None else 'per class'}"
    )
    applied = [
        f"IoU threshold {iou} (export.iou), per class",
        f"confidence threshold {conf['threshold']}: the raw score at which the keep rule ({rule}) "
        + ("keeps a box, for every class" if conf["exact"] else "first keeps a box, lowest class"),
    ]
    not_applied = [
        "the score mapping: `confidence` holds raw scores; the host maps them with the "
        f"{METADATA_KEY!r} metadata (CoreML's NMS layer has no per-class score tables, and a "
        "position-aware entry needs each box's geometry in the original image)",
        *conf["host_applies"],
    ]
    return {
        "iou_threshold": iou,
        "confidence_threshold": conf["threshold"],
        "per_class_nms": True,
        "confidence": conf,
        "applied": applied,
        "not_applied": not_applied,
    }
