"""Stage `validate`: run every dataset check on data/; write metrics and HTML data docs; fail on critical findings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from vigil.atomic import atomic_dir, write_json_atomic, write_text_atomic
from vigil.cli_errors import user_errors
from vigil.data.checks import check_dataset, throughput
from vigil.params import ValidateParams, load_section


@user_errors
def main(data: Path = typer.Option(..., help="The dataset folder."),
         files: Path = typer.Option(..., help="Per-file manifest from the hash stage (files.jsonl)."),
         metrics: Path = typer.Option(..., help="Where to write metrics/validate.json."),
         docs: Path = typer.Option(..., help="Folder for the HTML data docs and findings."),
         params: Path = typer.Option(Path("params.yaml"), help="params.yaml (section `validate`).")) -> None:
    settings = load_section(params, "validate", ValidateParams)
    expected = {row["path"]: row["sha256"] for row in map(json.loads, files.read_text().splitlines()) if row}
    with atomic_dir(docs) as tmp:
        report = check_dataset(data, settings, docs_dir=tmp / "gx", expected_sha=expected)
        write_text_atomic(tmp / "findings.txt", "".join(f.render() + "\n" for f in report.findings))
    write_json_atomic(metrics, report.summary())
    for finding in report.findings:
        print(finding.render(), file=sys.stderr)
    verdict = "passed" if report.passed else "REJECTED"
    print(f"validate: {verdict}: {report.stats.get('images', 0)} images, {len(report.findings)} findings "
          f"({throughput(report):.0f} images/s); data docs: {docs / 'gx' / 'index.html'}")
    if not report.passed:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
