"""Stage `calibrate`: fit confidence calibration on val detections, measure ECE / D-ECE on test, export the mapping.

Inputs: the dataset (ground truth), the split lists, and the evaluate stage's detections on val and
test (format: src/vigil/detection/detections_file.py). Outputs: models/calibration.json (the lookup-table
mapping any runtime applies), metrics/calibrate.json, and the reliability diagram's CSV.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.params import load_section, load_seed
from vigil.release.calibrate_stage import publish_calibration, run_calibrate, summary
from vigil.release.params import CalibrateParams


@user_errors
def main(
    data: Path = typer.Option(..., help="The dataset folder (ground-truth labels)."),
    split: Path = typer.Option(
        ..., help="Folder with val.txt and test.txt (the split stage's lists)."
    ),
    val_detections: Path = typer.Option(
        ..., help="Detections on the val split (fitting, method choice)."
    ),
    test_detections: Path = typer.Option(
        ..., help="Detections on the test split (measuring only)."
    ),
    mapping: Path = typer.Option(
        ..., help="Where to write the calibration mapping (models/calibration.json)."
    ),
    metrics: Path = typer.Option(..., help="Where to write metrics/calibrate.json."),
    reliability: Path = typer.Option(..., help="Where to write the reliability diagram CSV."),
    params: Path = typer.Option(
        Path("params.yaml"), help="params.yaml (section `calibrate` and `seed`)."
    ),
) -> None:
    settings = load_section(params, "calibrate", CalibrateParams)
    seed = load_seed(params)
    start = time.perf_counter()
    result = run_calibrate(data, split, val_detections, test_detections, settings, seed)
    publish_calibration(result, mapping, metrics, reliability)
    print(summary(result))
    print(f"calibrate: → {mapping}, {metrics}, {reliability} in {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    typer.run(main)
