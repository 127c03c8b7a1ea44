"""Position-aware calibration: fixes what confidence-only maps cannot, agrees with netcal, keeps the boxes.

The synthetic detector is calibrated at the image's vertical centre line, underconfident to its left
and overconfident to its right (P(correct) = σ(logit(score) − 2·cx + 1)): ECE averages the two
sides out, D-ECE and the position-aware method see them apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from repo_params import raw
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.metrics.matching import MatchedDetections, normalized_boxes
from vigil.params import build
from vigil.release.calibration_fit import (
    fit_calibration,
    fit_knots,
    fit_position,
    logit,
    sigmoid,
)
from vigil.release.ece import dece_floor, detection_ece
from vigil.release.mapping import (
    SCHEMA_V1,
    MappingError,
    box_geometry,
    calibrate_detections,
    check_mapping,
    keep_mask,
    load_mapping,
)
from vigil.release.params import CalibrateParams

NAMES = ["car", "person", "bag"]
DECE = {"confidence": 5, "cx": 2, "cy": 2, "w": 2, "h": 2}


def params(**changes: object) -> CalibrateParams:
    return build(
        CalibrateParams, raw("calibrate", {"min_samples": 100, "folds": 3, **changes}), "calibrate"
    )


def overconfident_to_the_right(n: int, seed: int) -> MatchedDetections:
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.02, 0.999, n)
    boxes = rng.uniform(size=(n, 4))
    p = sigmoid(logit(s) - 2.0 * boxes[:, 0] + 1.0)
    return MatchedDetections(s, rng.integers(0, 3, n), rng.uniform(size=n) < p, boxes)


def test_position_fixes_what_a_confidence_only_map_cannot_and_is_chosen_out_of_fold() -> None:
    val, test = overconfident_to_the_right(4000, 1), overconfident_to_the_right(4000, 2)
    mapping = fit_calibration(val, NAMES, params(), seed=0)
    assert mapping["global"]["method"] == "position"
    selection = mapping["global"]["selection"]
    assert selection["position"] < min(selection[m] for m in ("platt", "isotonic", "temperature"))
    after = test.with_scores(calibrate_detections(mapping, test.classes, test.scores, test.boxes))
    platt = fit_knots("platt", val.scores, val.correct, val.boxes, params())
    assert platt is not None
    confidence_only = test.with_scores(platt(test.scores))
    assert detection_ece(after, DECE) < detection_ece(confidence_only, DECE) - 0.03
    # what is left is the estimator's own floor: a perfectly calibrated detector would measure it
    assert detection_ece(after, DECE) < dece_floor(after, DECE) + 0.015


def test_position_agrees_with_netcal_logistic_calibration_in_detection_mode() -> None:
    """netcal (Küppers et al.'s own library) fits the same model; unregularized, the two must agree."""
    from netcal.scaling import LogisticCalibration

    val, test = overconfident_to_the_right(3000, 3), overconfident_to_the_right(2000, 4)
    fitted = fit_position(val.scores, val.correct, val.boxes, params(position_c=1e6))
    assert fitted is not None and fitted.shift is not None
    from vigil.release.mapping import shifted_scores

    ours = fitted.calibrator(
        shifted_scores(test.scores, test.boxes, ["cx", "cy", "w", "h"], fitted.shift)
    )
    netcal = LogisticCalibration(detection=True)
    netcal.fit(np.column_stack([val.scores, val.boxes]), val.correct.astype(int))
    theirs = np.asarray(netcal.transform(np.column_stack([test.scores, test.boxes]))).reshape(-1)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_the_same_boxes_are_kept_though_the_score_is_not_monotone_in_the_raw_score() -> None:
    val = overconfident_to_the_right(3000, 5)
    mapping = fit_calibration(val, NAMES, params(methods=["position"]), seed=0)
    assert mapping["keep"] == {"score": "raw", "threshold": 0.25}
    rng = np.random.default_rng(6)
    scores = np.concatenate([rng.uniform(size=4000), [np.nextafter(0.25, 0), 0.25]])
    boxes, classes = rng.uniform(size=(scores.size, 4)), rng.integers(0, 3, scores.size)
    calibrated = calibrate_detections(mapping, classes, scores, boxes)
    order = np.argsort(scores)
    assert (
        np.diff(calibrated[order]) < 0
    ).any()  # a higher raw score can get a lower calibrated one
    assert np.array_equal(keep_mask(mapping, classes, scores, boxes), scores >= 0.25)
    changed = fit_calibration(
        val, NAMES, params(methods=["position"], keep_operating_threshold=False), seed=0
    )
    kept = keep_mask(changed, classes, scores, boxes)
    assert np.array_equal(kept, calibrate_detections(changed, classes, scores, boxes) >= 0.25)
    assert not np.array_equal(kept, scores >= 0.25)


def test_a_position_mapping_needs_the_boxes() -> None:
    mapping = fit_calibration(overconfident_to_the_right(2000, 7), NAMES, params(), seed=0)
    with pytest.raises(ValueError, match="position-aware"):
        calibrate_detections(mapping, [0], [0.5])


def test_box_geometry_is_the_one_the_fit_saw() -> None:
    xyxy = np.array([[10.0, 20.0, 110.0, 60.0], [-5.0, 230.0, 40.0, 260.0]])
    truth = ImageTruth("a.jpg", 320, 240)
    dets = ImageDetections(xyxy, np.array([0.9, 0.4]), np.array([0, 1]))
    np.testing.assert_array_equal(box_geometry(xyxy, 320, 240), normalized_boxes(truth, dets))


def v1_mapping() -> dict:
    return {
        "schema": SCHEMA_V1,
        "global": {"x": [0.0, 1.0], "y": [0.0, 0.5], "threshold": 0.125},
        "classes": {"1": {"x": [0.0, 1.0], "y": [0.0, 1.0], "threshold": 0.25}},
    }


def test_a_v1_mapping_is_still_read_and_keeps_by_its_per_class_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1_mapping()))
    mapping = load_mapping(path)
    scores, classes = np.array([0.2, 0.3, 0.2, 0.3]), np.array([0, 0, 1, 1])
    np.testing.assert_allclose(
        calibrate_detections(mapping, classes, scores), [0.1, 0.15, 0.2, 0.3]
    )
    assert keep_mask(mapping, classes, scores).tolist() == [False, True, False, True]


@pytest.mark.parametrize(
    "change, where",
    [
        ({"global": {"x": [0.0, 1.0], "y": [0.0, 1.0], "shift": [1.0]}}, "global.shift"),
        ({"features": ["cx", "depth"]}, "features"),
        ({"keep": {"score": "calibrated"}}, "keep"),
        ({"keep": {"score": "both", "threshold": 0.25}}, "keep"),
        ({"logit_eps": 0}, "logit_eps"),
        ({"classes": {"0": {"x": [0.0, 1.0], "y": [0.0, 1.0], "shift": "up"}}}, "classes.0.shift"),
        ({"schema": "vigil.calibration/3"}, "schema"),
    ],
)
def test_a_bad_v2_mapping_names_the_part(change: dict, where: str) -> None:
    good = fit_calibration(overconfident_to_the_right(1500, 8), NAMES, params(), seed=0)
    check_mapping(good)
    with pytest.raises(MappingError) as err:
        check_mapping({**good, **change})
    assert err.value.where == where


def test_a_shift_in_a_v1_mapping_is_refused() -> None:
    bad = v1_mapping()
    bad["global"]["shift"] = [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(MappingError, match="global.shift"):
        check_mapping(bad)


@pytest.mark.parametrize(
    "values, field",
    [
        ({"position_features": ["cx", "depth"]}, "calibrate.position_features"),
        ({"position_features": []}, "calibrate.position_features"),
        ({"position_features": ["cx", "cx"]}, "calibrate.position_features"),
        ({"position_c": 0.0}, "calibrate.position_c"),
        ({"position_c": -1.0}, "calibrate.position_c"),
    ],
)
def test_bad_position_params_name_the_key(values: dict, field: str) -> None:
    with pytest.raises(VigilError) as err:
        build(CalibrateParams, {**raw("calibrate"), **values}, "calibrate")
    assert err.value.field == field


def test_position_is_a_shift_of_the_logit_then_the_platt_table() -> None:
    """σ(a·logit(s) + w·f + b) == table(σ(logit(s) + (w/a)·f)): the exported form is the fitted model."""
    val = overconfident_to_the_right(3000, 9)
    fitted = fit_position(val.scores, val.correct, val.boxes, params())
    knots = fit_knots("position", val.scores, val.correct, val.boxes, params())
    assert fitted is not None and knots is not None and fitted.shift is not None
    from sklearn.linear_model import LogisticRegression

    x = np.column_stack([logit(val.scores), val.boxes])
    model = LogisticRegression(C=params().position_c, max_iter=5000).fit(x, val.correct.astype(int))
    np.testing.assert_allclose(
        knots(val.scores, val.boxes), model.predict_proba(x)[:, 1], atol=2e-3
    )
