"""Stage `split`: group-wise, stratified train/val/test lists of data/ (+ the pool) and metrics/split.json."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.data.split import summary
from vigil.data.split_io import run_split
from vigil.params import SplitParams, load_section, load_seed


@user_errors
def main(
    data: Path = typer.Option(..., help="The dataset folder."),
    files: Path = typer.Option(..., help="The hash stage's per-file manifest (files.jsonl)."),
    validated: Path = typer.Option(
        ..., help="The validate stage's metrics JSON; a failed validation stops here."
    ),
    out: Path = typer.Option(
        ...,
        help="Folder for train/val/test/pool.txt, + quarantine.txt under the "
        "interlocked strategy (replaced whole).",
    ),
    metrics: Path = typer.Option(..., help="Where to write metrics/split.json."),
    params: Path = typer.Option(
        Path("params.yaml"), help="params.yaml (section `split` and `seed`)."
    ),
) -> None:
    settings = load_section(params, "split", SplitParams)
    seed = load_seed(params)
    start = time.perf_counter()
    result = run_split(
        data,
        out,
        settings,
        seed,
        files=files,
        validated=validated,
        metrics=metrics,
        protect=[params],
    )
    print(summary(result))
    print(f"split: {data} → {out}, {metrics} in {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    typer.run(main)
