"""Stage `evaluate`: each model on the test split — COCO metrics (pycocotools) per class, size, stratum and
group, count error, CPU latency, ultralytics' own val as a cross-check — into metrics/evaluate.json, plus
PR curves and confusion matrices as DVC plots, and one model's raw detections on val and test for `calibrate`.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.data.distance import DistanceParams
from vigil.errors import VigilError
from vigil.hardware import one_line
from vigil.metrics.params import EvaluateParams
from vigil.models.evaluate import DetectionsDump, ModelSpec, run_evaluate, summary_line
from vigil.params import load_section


@user_errors
def main(
    data: Path = typer.Option(
        ..., help="The dataset folder (images/, labels/, manifest.jsonl, classes.txt)."
    ),
    split: Path = typer.Option(
        ..., help="The split list to evaluate on (artifacts/split/test.txt)."
    ),
    model: list[str] = typer.Option(
        ..., help="NAME=PATH of a checkpoint, repeatable; NAME?=PATH if optional."
    ),
    metrics: Path = typer.Option(..., help="Where to write metrics/evaluate.json."),
    plots: Path = typer.Option(
        ..., help="Folder for the PR curves and confusion matrices (replaced whole)."
    ),
    detections_of: str = typer.Option(
        None, help="Model whose val/test detections calibrate reads (e.g. student)."
    ),
    val_split: Path = typer.Option(
        None, help="The val split list, for those detections (artifacts/split/val.txt)."
    ),
    val_detections: Path = typer.Option(None, help="Where to write its val detections (JSON)."),
    test_detections: Path = typer.Option(None, help="Where to write its test detections (JSON)."),
    work_dir: Path = typer.Option(..., help="Scratch for ultralytics val; no output."),
    params: Path = typer.Option(
        Path("params.yaml"), help="params.yaml (sections `evaluate`, `distance`)."
    ),
) -> None:
    settings = load_section(params, "evaluate", EvaluateParams)
    distance = load_section(params, "distance", DistanceParams)
    specs = [ModelSpec.parse(text) for text in model]
    dump_args = (detections_of, val_split, val_detections, test_detections)
    if any(a is not None for a in dump_args) and not all(a is not None for a in dump_args):
        raise VigilError(
            "--detections-of, --val-split, --val-detections and --test-detections go together"
        )
    dump = (
        DetectionsDump(detections_of, val_split, val_detections, test_detections)
        if detections_of
        else None
    )
    start = time.perf_counter()
    result = run_evaluate(
        data,
        split,
        specs,
        metrics=metrics,
        plots=plots,
        params=settings,
        work_dir=work_dir,
        dump=dump,
        distance=distance,
    )
    print(f"evaluate: latencies on {one_line(result['hardware'])}")
    for spec in specs:
        print(f"evaluate: {summary_line(spec.name, result[spec.name])}")
    print(f"evaluate: {split} → {metrics}, {plots} in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    typer.run(main)
