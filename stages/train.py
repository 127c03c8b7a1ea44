"""Stage `train`: fine-tune the teacher (ultralytics YOLO) on the train split, pick the best epoch on val.

A stopped run resumes by itself: run the stage again with the same params and split (`--fresh` to
start over). The run folder (`--run-dir`) is kept outside the DVC outputs for that reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

import vigil  # noqa: F401  (offline switches)
from vigil.errors import VigilError
from vigil.models.params import load_train_params
from vigil.models.yolo import configure_ultralytics


def main(data: Path = typer.Option(..., help="The dataset folder (images/, labels/, classes.txt)."),
         split: Path = typer.Option(..., help="Folder of the split lists (train.txt, val.txt)."),
         init: Path | None = typer.Option(None, help="Init weights (models/pretrained/…); omit for a random init."),
         weights: Path = typer.Option(..., help="Where to write the best checkpoint (models/teacher/best.pt)."),
         metrics: Path = typer.Option(..., help="Where to write metrics/train.json."),
         live: Path = typer.Option(..., help="Folder for the DVCLive training curves (plots/train)."),
         run_dir: Path = typer.Option(..., help="Persistent run folder (resume); not a DVC output."),
         fresh: bool = typer.Option(False, "--fresh", help="Ignore a stopped run and start over."),
         params: Path = typer.Option(Path("params.yaml"), help="params.yaml (section `train`, and `seed`).")) -> None:
    configure_ultralytics()  # before ultralytics is imported: project-local settings, its DVC callback off
    from vigil.models.train import TrainPaths, train_detector

    try:
        settings, seed = load_train_params(params)
        paths = TrainPaths(data=data, split=split, run_dir=run_dir, weights=weights, metrics=metrics, live=live,
                           init=init)
        result = train_detector(settings, seed, paths, resume=not fresh)
    except VigilError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        raise typer.Exit(2) from None
    val = result["val"]
    print(f"train: {result['epochs_run']} epochs ({result['seconds_per_epoch']:.0f} s each), best epoch "
          f"{result['best_epoch']}: val mAP50 {val['map50']:.3f}, mAP50-95 {val['map50_95']:.3f} → {weights}, {metrics}")


if __name__ == "__main__":
    typer.run(main)
