"""Stage `train`: fine-tune the teacher (ultralytics YOLO) on the train split, pick the best epoch on val.

A stopped run resumes by itself: run the stage again with the same params and split (`--fresh` to
start over). The run folder (`--run-dir`) is kept outside the DVC outputs for that reason.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.models.params import load_train_params
from vigil.models.train import TrainPaths, train_detector


@user_errors
def main(
    data: Path = typer.Option(..., help="The dataset folder (images/, labels/, classes.txt)."),
    split: Path = typer.Option(..., help="Folder of the split lists (train.txt, val.txt)."),
    init: Path | None = typer.Option(
        None, help="Init weights (models/pretrained/…); omit for a random init."
    ),
    weights: Path = typer.Option(
        ..., help="Where to write the best checkpoint (models/teacher/best.pt)."
    ),
    metrics: Path = typer.Option(..., help="Where to write metrics/train.json."),
    live: Path = typer.Option(..., help="Folder for the DVCLive training curves (plots/train)."),
    run_dir: Path = typer.Option(..., help="Persistent run folder (resume); not a DVC output."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore a stopped run and start over."),
    params: Path = typer.Option(
        Path("params.yaml"), help="params.yaml (section `train`, and `seed`)."
    ),
) -> None:
    settings, seed = load_train_params(params)
    paths = TrainPaths(
        data=data,
        split=split,
        run_dir=run_dir,
        weights=weights,
        metrics=metrics,
        live=live,
        init=init,
    )
    result = train_detector(settings, seed, paths, resume=not fresh)
    val = result["val"]
    print(
        f"train: {result['epochs_run']} epochs ({result['seconds_per_epoch']:.0f} s each), best epoch "
        f"{result['best_epoch']}: val mAP50 {val['map50']:.3f}, mAP50-95 {val['map50_95']:.3f} → {weights}, {metrics}"
    )


if __name__ == "__main__":
    typer.run(main)
