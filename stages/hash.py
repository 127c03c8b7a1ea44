"""Stage `hash`: sha256 of every file in data/ (incremental), the per-file manifest and metrics/dataset.json.

With `--shards FOLDER` (tar shards, docs/SCALE.md) it first unpacks them into `--data`, checked.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.data.hash_cache import DEFAULT_CACHE
from vigil.data.shards import describe_unpack, unpack
from vigil.data.summary import describe, hash_dataset
from vigil.params import HashParams, load_section


@user_errors
def main(
    data: Path = typer.Option(..., help="The dataset folder."),
    files: Path = typer.Option(..., help="Where to write the per-file manifest (files.jsonl)."),
    metrics: Path = typer.Option(..., help="Where to write metrics/dataset.json."),
    cache: Path = typer.Option(
        DEFAULT_CACHE, help="The incremental hash cache (kept between runs; not a DVC output)."
    ),
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml (section `hash`)."),
    shards: Path | None = typer.Option(
        None, help="Tar shards (`vigil data pack`) to unpack into --data first."
    ),
) -> None:
    settings = load_section(params, "hash", HashParams)
    if shards is not None:
        print("hash: " + describe_unpack(unpack(shards, data)))
    start = time.perf_counter()
    result, summary = hash_dataset(
        data, files_out=files, metrics_out=metrics, workers=settings.workers, cache_path=cache
    )
    print(f"hash: {data}: " + describe(summary, result, time.perf_counter() - start))


if __name__ == "__main__":
    typer.run(main)
