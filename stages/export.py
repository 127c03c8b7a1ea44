"""Stage `export`: ONNX, ONNX INT8, CoreML and (with a GPU) TensorRT of the release model, each re-validated.

Every ONNX and CoreML file carries the calibration mapping (`--calibration`) in its metadata.

The release subject is a stage argument (`--model`): the distilled student (dvc.yaml passes its path).
Writes the exported files under `--out` (replaced whole) and `metrics/export.json`; a params or
input error exits 2 with one message.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.export.export_stage import run_export, summary
from vigil.export.params import ExportParams
from vigil.params import load_section


@user_errors
def main(
    model: Path = typer.Option(..., help="The release model checkpoint (.pt)."),
    data: Path = typer.Option(..., help="The canonical dataset folder."),
    test_split: Path = typer.Option(..., help="Split list the exports are re-evaluated on."),
    val_split: Path = typer.Option(..., help="Split list the INT8 calibration images come from."),
    calibration: Path = typer.Option(
        ..., help="The score calibration every export carries (models/calibration.json)."
    ),
    out: Path = typer.Option(..., help="Folder for the exported files (replaced whole)."),
    metrics: Path = typer.Option(..., help="Where to write metrics/export.json."),
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml (section `export`)."),
) -> None:
    settings = load_section(params, "export", ExportParams)
    result = run_export(model, data, test_split, val_split, out, metrics, settings, calibration)
    print(summary(result))


if __name__ == "__main__":
    typer.run(main)
