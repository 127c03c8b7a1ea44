"""The CoreML NMS layer's raw confidence threshold keeps what the calibration's keep rule keeps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vigil.export.nms_threshold import lowest_reaching, nms_confidence, nms_record
from vigil.release.mapping import apply_calibration

NAMES = ["car", "person", "bike"]


def mapping(keep: str, threshold: float, **classes: Any) -> dict[str, Any]:
    return {
        "schema": "vigil.calibration/2",
        "features": ["cx", "w"],
        "logit_eps": 1e-6,
        "keep": {"score": keep, "threshold": threshold},
        "global": {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.7, 1.0]},
        "classes": classes,
    }


def test_a_raw_keep_rule_is_the_threshold_itself() -> None:
    out = nms_confidence(mapping("raw", 0.25), NAMES)
    assert out["threshold"] == 0.25 and out["exact"] and out["host_applies"] == []
    assert out["keep_score"] == "raw" and out["keep_threshold"] == 0.25


def test_a_calibrated_rule_inverts_the_monotone_table() -> None:
    m = mapping("calibrated", 0.35)
    out = nms_confidence(m, NAMES)
    raw = out["threshold"]
    assert raw == pytest.approx(0.25, abs=1e-6) and out["exact"]  # 0.35 = 0.7 * 0.25 / 0.5
    assert (
        apply_calibration(m, 0, [raw + 1e-6])[0] >= 0.35 > apply_calibration(m, 0, [raw - 1e-4])[0]
    )


def test_classes_above_the_lowest_are_left_to_the_host() -> None:
    m = mapping("calibrated", 0.35, **{"1": {"x": [0.0, 1.0], "y": [0.0, 1.0]}})
    out = nms_confidence(m, NAMES)
    assert out["threshold"] == pytest.approx(0.25, abs=1e-6)  # car and bike; person needs 0.35
    assert out["per_class"]["person"]["raw"] == pytest.approx(0.35)
    assert not out["exact"] and out["host_applies"] == [
        "person: keep raw >= 0.35 (the layer keeps from 0.25)"
    ]


def test_a_non_monotone_table_is_a_lower_bound() -> None:
    table = {"x": [0.0, 0.3, 0.6, 1.0], "y": [0.0, 0.5, 0.2, 1.0]}
    out = nms_confidence(mapping("calibrated", 0.4, **{"0": table}), NAMES)
    car = out["per_class"]["car"]
    assert car["raw"] == pytest.approx(0.24) and car["exact"] is False
    assert "car: inverse of its non-monotone table at calibrated 0.4" in out["host_applies"]


def test_a_position_aware_entry_gets_the_best_geometrys_threshold() -> None:
    shifted = {"x": [0.0, 1.0], "y": [0.0, 1.0], "shift": [1.0, -0.5]}
    m = mapping("calibrated", 0.25, **{"1": shifted})
    out = nms_confidence(m, NAMES)
    person = out["per_class"]["person"]
    assert person["exact"] is False and out["threshold"] == person["raw"]
    # the best geometry (cx = 1, w = 0) lifts exactly this raw score to 0.25; no geometry lifts a lower one
    best = np.array([[1.0, 0.5, 0.0, 0.5]])
    assert apply_calibration(m, 1, [person["raw"] + 1e-6], best)[0] >= 0.25
    grid = np.array(
        [[cx, 0.5, w, 0.5] for cx in np.linspace(0, 1, 11) for w in np.linspace(0, 1, 11)]
    )
    assert (apply_calibration(m, 1, np.full(len(grid), person["raw"] - 1e-3), grid) < 0.25).all()


def test_an_unreachable_threshold_drops_the_class() -> None:
    m = mapping("calibrated", 0.5, **{"2": {"x": [0.0, 1.0], "y": [0.0, 0.4]}})
    out = nms_confidence(m, NAMES)
    assert out["per_class"]["bike"]["raw"] is None
    assert any(line.startswith("bike: drop every box") for line in out["host_applies"])
    assert lowest_reaching([0.0, 1.0], [0.0, 0.4], 0.5) is None
    assert lowest_reaching([0.2, 1.0], [0.3, 1.0], 0.1) == 0.0  # clipped below the first knot


def test_a_v1_file_keeps_per_class_calibrated_thresholds() -> None:
    v1 = {
        "schema": "vigil.calibration/1",
        "global": {"x": [0.0, 1.0], "y": [0.0, 1.0], "threshold": 0.3},
        "classes": {"0": {"x": [0.0, 1.0], "y": [0.0, 1.0], "threshold": 0.2}},
    }
    out = nms_confidence(v1, NAMES)
    assert out["threshold"] == pytest.approx(0.2) and out["keep_threshold"] is None
    assert out["keep_score"] == "calibrated" and len(out["host_applies"]) == 2


def test_the_record_says_what_is_applied_and_what_is_not() -> None:
    record = nms_record(mapping("raw", 0.25), NAMES, 0.7)
    assert record["iou_threshold"] == 0.7 and record["confidence_threshold"] == 0.25
    assert record["applied"][1].startswith("confidence threshold 0.25: the raw score")
    assert record["not_applied"][0].startswith("the score mapping: `confidence` holds raw scores")
