"""Calibration: every vigil method and netcal's detection calibration on the same val/test detections.

Each row is fitted on the val detections and measured on the test detections (those the calibrate
stage uses: score >= `calibrate.min_score`, matched at `calibrate.iou`): ECE, D-ECE (the
`calibrate.dece_bins` grid), the D-ECE a perfectly calibrated detector would measure on the same
boxes (its floor: the estimator's own bias at this many detections), NLL and Brier, and how many boxes
kept at the operating threshold changed. vigil's rows use the calibrate stage's own fit (per class
where a class has enough val detections, else global) with `calibrate.methods` set to one method;
"chosen" is the stage itself (the method chosen out of fold on val). netcal's rows (Küppers et al.'s
library) fit one global map on confidence and the box's cx, cy, w, h: LogisticCalibration (the same
model as vigil's `position`, unregularized), BetaCalibration and HistogramBinning on the D-ECE grid
(which thresholds nothing: its kept set is counted on its calibrated scores). Params: the
repository's `calibrate:` section and `seed`.

    python benchmarks/calibration_benchmark.py --data data --split artifacts/split \\
        --val-detections artifacts/evaluate/detections_val.json \\
        --test-detections artifacts/evaluate/detections_test.json
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.layout import read_classes
from vigil.metrics.matching import MatchedDetections
from vigil.params import load_section, load_seed
from vigil.release.calibrate_stage import load_split
from vigil.release.calibration_fit import brier, fit_calibration, nll
from vigil.release.ece import dece_floor, detection_ece, expected_calibration_error
from vigil.release.mapping import calibrate_detections, keep_mask
from vigil.release.params import CalibrateParams

REPO = Path(__file__).resolve().parents[1]
OURS = ("platt", "isotonic", "temperature", "position")


def row(
    name: str,
    test: MatchedDetections,
    scores: np.ndarray,
    kept: np.ndarray,
    params: CalibrateParams,
) -> list[str]:
    after = test.with_scores(np.clip(scores, 0.0, 1.0))
    changed = int((kept != (test.scores >= params.operating_threshold)).sum())
    return [
        name,
        f"{expected_calibration_error(after.scores, test.correct, params.bins):.4f}",
        f"{detection_ece(after, params.dece_bins):.4f}",
        f"{dece_floor(after, params.dece_bins):.4f}",
        f"{nll(after.scores, test.correct):.4f}",
        f"{brier(after.scores, test.correct):.4f}",
        str(changed),
    ]


def netcal_models(params: CalibrateParams) -> list[tuple[str, Callable[[], Any]]]:
    from netcal.binning import HistogramBinning
    from netcal.scaling import BetaCalibration, LogisticCalibration

    grid = [params.dece_bins.get(d, 1) for d in ("confidence", "cx", "cy", "w", "h")]
    return [
        ("netcal LogisticCalibration (detection)", lambda: LogisticCalibration(detection=True)),
        ("netcal BetaCalibration (detection)", lambda: BetaCalibration(detection=True)),
        (
            f"netcal HistogramBinning (detection, bins {grid})",
            lambda: HistogramBinning(bins=grid, detection=True),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True, help="folder with val.txt, test.txt")
    parser.add_argument("--val-detections", type=Path, required=True)
    parser.add_argument("--test-detections", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    args = parser.parse_args()
    params = load_section(args.params, "calibrate", CalibrateParams)
    seed = load_seed(args.params)
    names = read_classes(args.data)
    val, _ = load_split(args.data, args.split / "val.txt", args.val_detections, params)
    test, _ = load_split(args.data, args.split / "test.txt", args.test_detections, params)

    header = ["calibration (fit on val, measured on test)", "ECE", "D-ECE", "D-ECE floor"]
    header += ["NLL", "Brier", "kept boxes changed"]
    rows = [
        row(
            "none (raw scores)",
            test,
            test.scores,
            test.scores >= params.operating_threshold,
            params,
        )
    ]
    for label, methods in [*((m, [m]) for m in OURS), ("chosen out of fold", params.methods)]:
        mapping = fit_calibration(val, names, replace(params, methods=list(methods)), seed)
        scores = calibrate_detections(mapping, test.classes, test.scores, test.boxes)
        kept = keep_mask(mapping, test.classes, test.scores, test.boxes)
        chosen = sorted({e["method"] for e in [mapping["global"], *mapping["classes"].values()]})
        name = f"vigil {label}" + (
            f" ({', '.join(chosen)})" if label == "chosen out of fold" else ""
        )
        rows.append(row(name, test, scores, kept, params))
    for name, make in netcal_models(params):
        model = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(np.column_stack([val.scores, val.boxes]), val.correct.astype(int))
            scores = np.asarray(model.transform(np.column_stack([test.scores, test.boxes])))
        scores = scores.reshape(-1)
        rows.append(row(name, test, scores, scores >= params.operating_threshold, params))

    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(
        f"calibration: {len(val)} val / {len(test)} test detections (score >= {params.min_score}), "
        f"D-ECE grid {dict(params.dece_bins)}"
    )
    for r in [header, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


if __name__ == "__main__":
    main()
