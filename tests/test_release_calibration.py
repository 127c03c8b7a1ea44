"""Calibration: each method lowers ECE / D-ECE on held-out data; fallback; monotone; same boxes kept; JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from repo_params import raw, section
from vigil.atomic import write_json_atomic
from vigil.errors import VigilError
from vigil.metrics.matching import MatchedDetections
from vigil.params import build
from vigil.release import calibration_fit as calibration
from vigil.release.calibration_fit import fit_calibration, fit_knots, logit, sigmoid
from vigil.release.ece import detection_ece, expected_calibration_error
from vigil.release.mapping import apply_calibration, calibrate_detections, keep_mask, load_mapping
from vigil.release.params import CalibrateParams

REPO = Path(__file__).resolve().parents[1]
NAMES = ["car", "person", "bag"]
PARAMS = section("calibrate", CalibrateParams, min_samples=100, folds=3)
DECE = {"confidence": 5, "cx": 2, "cy": 2, "w": 2, "h": 2}


def synthetic(n: int, truth: str, seed: int, classes: int = 3) -> MatchedDetections:
    """Detections whose probability of being correct is a known function of the score."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.02, 0.999, n)
    p = s**2 if truth == "squared" else sigmoid(logit(s) / 2.5)  # "overconfident": temperature 2.5
    return MatchedDetections(
        s, rng.integers(0, classes, n), rng.uniform(size=n) < p, rng.uniform(size=(n, 4))
    )


@pytest.mark.parametrize(
    "method, truth",
    [
        ("platt", "squared"),
        ("isotonic", "squared"),
        ("platt", "overconfident"),
        ("isotonic", "overconfident"),
        ("temperature", "overconfident"),
    ],
)
def test_each_method_lowers_ece_and_dece_on_held_out_data(method: str, truth: str) -> None:
    fit, held = synthetic(3000, truth, seed=1), synthetic(3000, truth, seed=2)
    knots = fit_knots(method, fit.scores, fit.correct, fit.boxes, PARAMS)
    assert knots is not None
    after = held.with_scores(knots(held.scores))
    ece_before = expected_calibration_error(held.scores, held.correct, 10)
    ece_after = expected_calibration_error(after.scores, held.correct, 10)
    assert ece_before > 0.1
    assert ece_after < ece_before / 3
    assert detection_ece(after, DECE) < detection_ece(held, DECE) - 0.05


def test_temperature_alone_cannot_fix_a_skew_and_is_not_chosen() -> None:
    val, test = synthetic(3000, "squared", seed=3), synthetic(3000, "squared", seed=4)
    mapping = fit_calibration(val, NAMES, PARAMS, seed=0)
    selection = mapping["global"]["selection"]
    assert set(selection) == set(PARAMS.methods) >= {"platt", "isotonic", "temperature"}
    assert mapping["global"]["method"] in ("platt", "isotonic", "position")
    assert selection["temperature"] > max(selection["platt"], selection["isotonic"])
    after = calibrate_detections(mapping, test.classes, test.scores)
    assert (
        expected_calibration_error(after, test.correct, 10)
        < 0.04
        < expected_calibration_error(test.scores, test.correct, 10)
    )


def test_a_class_with_too_few_samples_falls_back_to_global() -> None:
    val = synthetic(2000, "overconfident", seed=5, classes=2)  # classes 0 and 1 only
    rare = np.flatnonzero(val.classes == 1)[:30]  # keep 30 detections of class 1
    keep = np.ones(len(val), dtype=bool)
    keep[np.flatnonzero(val.classes == 1)] = False
    keep[rare] = True
    val = val.select(keep)
    mapping = fit_calibration(val, NAMES, PARAMS, seed=0)
    own, rare_entry, absent = (
        mapping["classes"]["0"],
        mapping["classes"]["1"],
        mapping["classes"]["2"],
    )
    assert own["source"] == "class" and "x" in own
    assert rare_entry["source"] == "global" and "x" not in rare_entry
    assert rare_entry["reason"] == "30 val detections < min_samples 100"
    assert rare_entry["counts"]["detections"] == 30
    assert absent["source"] == "global" and absent["counts"]["detections"] == 0
    scores = np.linspace(0, 1, 50)
    boxes = np.random.default_rng(0).uniform(size=(50, 4))
    glob = calibration.Knots(
        np.asarray(mapping["global"]["x"]),
        np.asarray(mapping["global"]["y"]),
        np.asarray(mapping["global"]["shift"]) if "shift" in mapping["global"] else None,
        tuple(mapping["features"]),
    )(scores, boxes)
    for cls in (1, 2, 7):  # 7: a class id the mapping has never seen
        assert np.array_equal(apply_calibration(mapping, cls, scores, boxes), glob)
    assert not np.array_equal(apply_calibration(mapping, 0, scores, boxes), glob)


def test_a_class_with_one_outcome_falls_back_and_no_outcomes_at_all_is_identity() -> None:
    val = synthetic(1500, "overconfident", seed=6)
    correct = val.correct.copy()
    correct[val.classes == 2] = True  # class 2: every detection correct
    mapping = fit_calibration(replace(val, correct=correct), NAMES, PARAMS, seed=0)
    assert mapping["classes"]["2"]["source"] == "global"
    assert "needs at least 2 of each" in mapping["classes"]["2"]["reason"]
    everything_right = fit_calibration(
        replace(val, correct=np.ones(len(val), dtype=bool)), NAMES, PARAMS, 0
    )
    assert everything_right["global"]["method"] == "identity"
    assert everything_right["global"]["reason"].startswith("global:")
    assert apply_calibration(everything_right, 0, [0.3]) == pytest.approx([0.3], abs=1e-9)


def flat_isotonic_data() -> MatchedDetections:
    """Scores 0.2–0.3 all with the same precision: the isotonic fit is flat across the threshold 0.25."""
    rng = np.random.default_rng(7)
    s = np.concatenate(
        [rng.uniform(0.02, 0.2, 400), rng.uniform(0.2, 0.3, 400), rng.uniform(0.3, 1.0, 800)]
    )
    p = np.where((s >= 0.2) & (s < 0.3), 0.1, s * 0.8)
    return MatchedDetections(
        s,
        np.zeros(s.size, dtype=np.int64),
        rng.uniform(size=s.size) < p,
        rng.uniform(size=(s.size, 4)),
    )


@pytest.mark.parametrize("method", ["platt", "isotonic", "temperature"])
def test_mapping_is_strictly_monotone_and_keeps_the_same_boxes(method: str) -> None:
    val = flat_isotonic_data()
    params = build(
        CalibrateParams,
        raw("calibrate", {"methods": [method], "min_samples": 100, "folds": 3}),
        "calibrate",
    )
    mapping = fit_calibration(val, NAMES, params, seed=0)
    assert mapping["global"]["method"] == method
    for entry in [mapping["global"], mapping["classes"]["0"]]:
        assert np.all(np.diff(entry["x"]) > 0) and np.all(np.diff(entry["y"]) > 0)
    rng = np.random.default_rng(8)
    t = params.operating_threshold
    scores = np.concatenate(
        [
            rng.uniform(size=5000).astype(np.float32).astype(np.float64),
            [
                np.nextafter(np.float32(t), np.float32(0)),
                t,
                np.nextafter(np.float32(t), np.float32(1)),
            ],
        ]
    )
    classes = rng.integers(0, 3, scores.size)
    assert np.array_equal(keep_mask(mapping, classes, scores), scores >= t)


def test_without_the_tie_break_a_flat_isotonic_piece_would_merge_distinct_scores(
    monkeypatch,
) -> None:
    """The tie-break keeps a class's ranking (and so its AP): distinct raw scores stay distinct."""
    val = flat_isotonic_data()
    params = build(
        CalibrateParams,
        raw("calibrate", {"methods": ["isotonic"], "min_samples": 100, "folds": 3}),
        "calibrate",
    )
    scores = np.linspace(0.2, 0.3, 1001)
    classes = np.zeros(scores.size, dtype=int)
    kept = calibrate_detections(fit_calibration(val, NAMES, params, seed=0), classes, scores)
    assert np.all(np.diff(kept) > 0)
    monkeypatch.setattr(calibration, "TIE_BREAK", 0.0)
    merged = calibrate_detections(fit_calibration(val, NAMES, params, seed=0), classes, scores)
    assert np.unique(merged).size < scores.size / 10  # the flat piece: one value for many scores


def test_keep_operating_threshold_false_changes_the_kept_boxes() -> None:
    val = synthetic(3000, "squared", seed=9)
    params = build(
        CalibrateParams,
        raw("calibrate", {"keep_operating_threshold": False, "min_samples": 100, "folds": 3}),
        "calibrate",
    )
    mapping = fit_calibration(val, NAMES, params, seed=0)
    assert mapping["operating_threshold"] == {"raw": 0.25, "keep_same_boxes": False}
    assert mapping["keep"] == {"score": "calibrated", "threshold": 0.25}
    kept = keep_mask(mapping, val.classes, val.scores)
    assert kept.sum() < (val.scores >= 0.25).sum()  # overconfident scores shrink below 0.25


def test_json_round_trip_applies_with_numpy_only(tmp_path: Path) -> None:
    val = synthetic(1500, "squared", seed=10)
    mapping = fit_calibration(val, NAMES, PARAMS, seed=0)
    path = tmp_path / "calibration.json"
    write_json_atomic(path, mapping)
    back = load_mapping(path)
    assert back["schema"] == "vigil.calibration/2"
    probe = np.linspace(0, 1, 33)
    boxes = np.linspace(0, 1, 33 * 4).reshape(33, 4)
    expected = {c: apply_calibration(mapping, c, probe, boxes).tolist() for c in (0, 1, 2, 9)}
    for c in expected:
        assert apply_calibration(back, c, probe, boxes).tolist() == expected[c]
    # a fresh interpreter where scikit-learn, scipy, torch and pandas cannot be imported
    code = f"""
import sys, json
for name in ("sklearn", "scipy", "torch", "pandas"):
    sys.modules[name] = None
from vigil.release.mapping import apply_calibration, load_mapping
m = load_mapping({str(path)!r})
import numpy as np
probe = np.linspace(0, 1, 33)
boxes = np.linspace(0, 1, 33 * 4).reshape(33, 4)
print(json.dumps({{c: apply_calibration(m, c, probe, boxes).tolist() for c in (0, 1, 2, 9)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert {int(k): v for k, v in json.loads(out.stdout).items()} == expected


def test_load_mapping_refuses_another_schema(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"schema": "something/2"}))
    with pytest.raises(
        ValueError, match="not a vigil.calibration/1 or vigil.calibration/2 mapping"
    ):
        load_mapping(path)


@pytest.mark.parametrize(
    "values, field",
    [
        ({"methods": ["histogram"]}, "calibrate.methods"),
        ({"criterion": "brier"}, "calibrate.criterion"),
        ({"dece_bins": {"confidence": 5, "depth": 2}}, "calibrate.dece_bins.depth"),
        ({"dece_bins": {"cx": 2}}, "calibrate.dece_bins.confidence"),
        ({"operating_threshold": 1.0}, "calibrate.operating_threshold"),
        ({"folds": 1}, "calibrate.folds"),
    ],
)
def test_bad_params_name_the_key(values: dict, field: str) -> None:
    with pytest.raises(VigilError) as err:
        build(CalibrateParams, {**raw("calibrate"), **values}, "calibrate")
    assert err.value.field == field


def test_platt_with_a_falling_slope_is_rejected_not_exported() -> None:
    # scores that anti-predict correctness: Platt's slope comes out negative (a decreasing map) → not a candidate
    rng = np.random.default_rng(11)
    s = rng.uniform(0.05, 0.95, 1200)
    correct = rng.uniform(size=s.size) < 1 - s
    boxes = rng.uniform(size=(s.size, 4))
    assert fit_knots("platt", s, correct, boxes, PARAMS) is None
    assert fit_knots("position", s, correct, boxes, PARAMS) is None
    detections = MatchedDetections(s, np.zeros(s.size, dtype=int), correct, boxes)
    mapping = fit_calibration(detections, NAMES, PARAMS, seed=0)
    assert mapping["global"]["selection"]["platt"] is None
    assert mapping["global"]["selection"]["position"] is None
    assert mapping["global"]["method"] in ("isotonic", "temperature")
    assert np.all(np.diff(mapping["global"]["y"]) > 0)


def test_ece_criterion_chooses_by_out_of_fold_ece() -> None:
    val = synthetic(2000, "squared", seed=12)
    params = build(
        CalibrateParams,
        raw("calibrate", {"criterion": "ece", "min_samples": 100, "folds": 3}),
        "calibrate",
    )
    mapping = fit_calibration(val, NAMES, params, seed=0)
    selection = mapping["global"]["selection"]
    assert mapping["criterion"] == "ece"
    assert mapping["global"]["method"] == min(selection, key=selection.get)
    assert selection["temperature"] > 0.1 > selection[mapping["global"]["method"]]
