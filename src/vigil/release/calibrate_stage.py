"""The calibrate stage's work: match val and test detections, fit on val, measure on test.

Returns the mapping (`models/calibration.json`), the metrics (`metrics/calibrate.json`: ECE, D-ECE,
NLL and Brier before and after on test, each binned error beside its floor — what a perfectly
calibrated detector would measure on the same boxes — the method per class, how many kept boxes
changed) and the reliability diagram's CSV; `stages/calibrate.py` only writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.data.layout import read_classes
from vigil.detection.detections_file import read_detections
from vigil.detection.split_lists import read_split_list
from vigil.metrics.matching import MatchedDetections, match_detections
from vigil.metrics.truth import class_ids_of, image_truth, records_by_image
from vigil.release.calibration_fit import brier, fit_calibration, nll
from vigil.release.ece import (
    dece_floor,
    detection_ece,
    ece_floor,
    expected_calibration_error,
    reliability,
    reliability_csv,
)
from vigil.release.mapping import calibrate_detections, keep_mask
from vigil.release.params import CalibrateParams


@dataclass(frozen=True)
class CalibrateResult:
    mapping: dict[str, Any]
    metrics: dict[str, Any]
    reliability_csv: str


def _num(value: float) -> float | None:
    """Rounded for stable diffs; NaN (nothing to measure) → null, which JSON can hold."""
    return None if math.isnan(value) else round(float(value), 6)


def load_split(
    data: Path, split_list: Path, detections: Path, params: CalibrateParams
) -> tuple[MatchedDetections, dict[str, Any]]:
    """Matched detections of one split (score >= min_score) and their counts."""
    entries = read_detections(detections, set(read_split_list(split_list)))
    records = records_by_image(data)  # their ignore regions
    ids = class_ids_of(data)
    truths = [
        image_truth(data, e.image, e.width, e.height, records.get(e.image), ids) for e in entries
    ]  # in the detections' frame
    matched = match_detections(truths, [e.detections for e in entries], params.iou)
    used = matched.select(matched.scores >= params.min_score)
    return used, {
        "images": len(entries),
        "ground_truth": int(sum(len(t.classes) for t in truths)),
        "detections": len(matched),
        "used": len(used),
        "correct": int(used.correct.sum()),
    }


def measure(
    mapping: dict[str, Any], test: MatchedDetections, params: CalibrateParams
) -> dict[str, Any]:
    """ECE, D-ECE, NLL, Brier before/after, per class, and the change in kept boxes, on held-out detections."""
    after = test.with_scores(calibrate_detections(mapping, test.classes, test.scores, test.boxes))
    kept_before = test.scores >= params.operating_threshold
    kept_after = keep_mask(mapping, test.classes, test.scores, test.boxes)
    nothing = not len(test)
    per_class = {}
    for key, entry in mapping["classes"].items():
        mask = test.classes == int(key)
        per_class[entry["name"]] = {
            "method": entry["method"],
            "source": entry["source"],
            **({"reason": entry["reason"]} if "reason" in entry else {}),
            "val_detections": entry["counts"]["detections"],
            "test_detections": int(mask.sum()),
            "ece_before": _num(
                expected_calibration_error(test.scores[mask], test.correct[mask], params.bins)
            ),
            "ece_after": _num(
                expected_calibration_error(after.scores[mask], test.correct[mask], params.bins)
            ),
        }
    return {
        "ece": {
            "before": _num(expected_calibration_error(test.scores, test.correct, params.bins)),
            "after": _num(expected_calibration_error(after.scores, test.correct, params.bins)),
            "floor_before": _num(ece_floor(test.scores, params.bins)),
            "floor_after": _num(ece_floor(after.scores, params.bins)),
        },
        "dece": {
            "before": _num(detection_ece(test, params.dece_bins)),
            "after": _num(detection_ece(after, params.dece_bins)),
            "floor_before": _num(dece_floor(test, params.dece_bins)),
            "floor_after": _num(dece_floor(after, params.dece_bins)),
        },
        "nll": {
            "before": None if nothing else _num(nll(test.scores, test.correct)),
            "after": None if nothing else _num(nll(after.scores, test.correct)),
        },
        "brier": {
            "before": None if nothing else _num(brier(test.scores, test.correct)),
            "after": None if nothing else _num(brier(after.scores, test.correct)),
        },
        "kept": {
            "before": int(kept_before.sum()),
            "after": int(kept_after.sum()),
            "changed": int((kept_before != kept_after).sum()),
        },
        "per_class": per_class,
    }


def run_calibrate(
    data: Path,
    split_dir: Path,
    val_detections: Path,
    test_detections: Path,
    params: CalibrateParams,
    seed: int,
) -> CalibrateResult:
    """Fit on val (method chosen by k-fold on val), measure on test; nothing is written here."""
    class_names = read_classes(Path(data))
    val, val_counts = load_split(data, Path(split_dir) / "val.txt", val_detections, params)
    test, test_counts = load_split(data, Path(split_dir) / "test.txt", test_detections, params)
    mapping = fit_calibration(val, class_names, params, seed)
    mapping["fit_data"] = {"split": "val", "iou": params.iou, **val_counts}
    measured = measure(mapping, test, params)
    glob = mapping["global"]
    metrics = {
        "iou": params.iou,
        "min_score": params.min_score,
        "bins": params.bins,
        "dece_bins": dict(params.dece_bins),
        "operating_threshold": {
            "raw": params.operating_threshold,
            "keep_same_boxes": params.keep_operating_threshold,
            **measured.pop("kept"),
        },
        "global": {
            "method": glob["method"],
            "folds": glob["folds"],
            "selection": glob["selection"],
            **({"reason": glob["reason"]} if "reason" in glob else {}),
        },
        "per_class": measured.pop("per_class"),
        "val": val_counts,
        "test": {**test_counts, **measured},
    }
    if "reason" in glob:  # why there is no fit, for the gate and the release report to show
        metrics["reason"] = (
            f"not fitted, scores pass unchanged: {glob['reason'].removeprefix('global: ')}"
        )
    if not len(test):
        metrics["test"]["reason"] = (
            f"no test detections with score >= calibrate.min_score ({params.min_score}): "
            "nothing to measure"
        )
    after_scores = calibrate_detections(mapping, test.classes, test.scores, test.boxes)
    csv_text = reliability_csv(
        reliability(test.scores, test.correct, params.bins),
        reliability(after_scores, test.correct, params.bins),
    )
    return CalibrateResult(mapping, metrics, csv_text)


def summary(result: CalibrateResult) -> str:
    """A few lines for the terminal."""
    t = result.metrics["test"]
    lines = [
        f"calibrate: test ECE {t['ece']['before']} → {t['ece']['after']}, "
        f"D-ECE {t['dece']['before']} → {t['dece']['after']} ({t['used']} detections)",
        f"  global: {result.metrics['global']['method']}; kept boxes changed at the operating threshold: "
        f"{result.metrics['operating_threshold']['changed']}",
    ]
    for name, entry in result.metrics["per_class"].items():
        lines.append(f"  {name}: {entry['method']} ({entry['source']})")
    return "\n".join(lines)


def publish_calibration(
    result: CalibrateResult, mapping: Path, metrics: Path, reliability: Path
) -> None:
    """Write the stage's outputs atomically: the mapping any runtime applies, the metrics, the reliability CSV."""
    from vigil.atomic import write_json_atomic, write_text_atomic

    write_json_atomic(mapping, result.mapping)
    write_json_atomic(metrics, result.metrics)
    write_text_atomic(reliability, result.reliability_csv)
