"""Stage `range`: fit the range estimators on val objects of known distance, score them on test, ship one.

Inputs: the dataset (true boxes, manifest `objects.<distance.field>` and `intrinsics`), the split
lists, and the evaluate stage's detections on val and test. Outputs: models/range.json (the
estimator `vigil predict` applies: `range_m` per box) and metrics/range.json (MAE and percent error
per distance bin, unfitted and fitted). The library: src/vigil/range/.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.data.distance import DistanceParams
from vigil.params import load_section
from vigil.range.params import RangeParams
from vigil.range.stage import publish_range, run_range, summary


@user_errors
def main(
    data: Path = typer.Option(..., help="The dataset folder (true boxes, distances, intrinsics)."),
    split: Path = typer.Option(
        ..., help="Folder with val.txt and test.txt (the split stage's lists)."
    ),
    val_detections: Path = typer.Option(..., help="Detections on the val split (fitting)."),
    test_detections: Path = typer.Option(..., help="Detections on the test split (scoring only)."),
    out: Path = typer.Option(..., help="Where to write the range estimator (models/range.json)."),
    metrics: Path = typer.Option(..., help="Where to write metrics/range.json."),
    params: Path = typer.Option(
        Path("params.yaml"), help="params.yaml (sections `range` and `distance`)."
    ),
) -> None:
    settings = load_section(params, "range", RangeParams)
    distance = load_section(params, "distance", DistanceParams)
    start = time.perf_counter()
    result = run_range(data, split, val_detections, test_detections, settings, distance)
    publish_range(result, out, metrics)
    print(summary(result))
    print(f"range: → {out}, {metrics} in {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    typer.run(main)
