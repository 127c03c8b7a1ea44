"""Stage `gate`: hold the release to the thresholds of `params.yaml` (`gate:`) and print the verdict.

Writes metrics/gate.json, reports/gate.md and reports/release.md (every table of the release),
then exits 1 when a gate failed (0 with `gate.report_only: true`); a params error exits 2 before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.params import load_section
from vigil.release.gate import publish_gate
from vigil.release.params import GateParams


@user_errors
def main(
    metrics: list[Path] = typer.Option(
        ..., help="A metrics JSON the gates read (repeat); its stem names it."
    ),
    out: Path = typer.Option(..., help="Where to write metrics/gate.json."),
    report: Path = typer.Option(..., help="Where to write reports/gate.md."),
    release: Path = typer.Option(
        ..., help="Where to write reports/release.md (the release's tables)."
    ),
    params: Path = typer.Option(Path("params.yaml"), help="params.yaml (section `gate`)."),
) -> None:
    settings = load_section(params, "gate", GateParams)
    document, text = publish_gate(settings, metrics, out, report, release)
    print(text, end="")
    if not document["passed"] and not settings.report_only:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
