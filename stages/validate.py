"""Stage `validate`: every dataset check on data/; metrics and HTML data docs; fails on critical findings.

Params that cannot fit the data fail here, first: a gate naming a stratum value that
`validate.allowed` does not allow would otherwise fail only at the `gate` stage, after training.
A params or input error exits 2 before anything is written; rejected data exits 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.data.checks import publish_validation, throughput
from vigil.data.distance import DistanceParams
from vigil.data.hashing import read_files_manifest
from vigil.params import ValidateParams, load_section
from vigil.release.gate_fit import check_gates_fit
from vigil.release.params import GateParams


@user_errors
def main(
    data: Path = typer.Option(..., help="The dataset folder."),
    files: Path = typer.Option(..., help="Per-file manifest from the hash stage (files.jsonl)."),
    metrics: Path = typer.Option(..., help="Where to write metrics/validate.json."),
    docs: Path = typer.Option(..., help="Folder for the HTML data docs and findings."),
    params: Path = typer.Option(Path("params.yaml"), help="params (validate, distance, gate)"),
) -> None:
    settings = load_section(params, "validate", ValidateParams)
    check_gates_fit(load_section(params, "gate", GateParams), settings.allowed.as_dict())
    expected = {entry.path: entry.sha256 for entry in read_files_manifest(files)}
    distance = load_section(params, "distance", DistanceParams)
    report = publish_validation(data, settings, expected, metrics, docs, distance)
    for finding in report.findings:
        print(finding.render(), file=sys.stderr)
    verdict = "passed" if report.passed else "REJECTED"
    print(
        f"validate: {verdict}: {report.stats.get('images', 0)} images, {len(report.findings)} findings "
        f"({throughput(report):.0f} images/s); data docs: {docs / 'gx' / 'index.html'}"
    )
    if not report.passed:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
