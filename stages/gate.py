"""Stage `gate`: hold the release to the thresholds of `params.yaml` (`gate:`) and print the verdict.

Writes metrics/gate.json and reports/gate.md, then exits 1 when a gate failed (0 with
`gate.report_only: true`); a params error exits 2 before anything is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vigil.atomic import write_json_atomic, write_text_atomic
from vigil.errors import VigilError
from vigil.params import load_section
from vigil.release.gate import run_gate
from vigil.release.params import GateParams


def main(metrics: list[Path] = typer.Option(..., help="A metrics JSON the gates read (repeat); its stem names it."),
         out: Path = typer.Option(..., help="Where to write metrics/gate.json."),
         report: Path = typer.Option(..., help="Where to write reports/gate.md."),
         params: Path = typer.Option(Path("params.yaml"), help="params.yaml (section `gate`).")) -> None:
    try:
        settings = load_section(params, "gate", GateParams)
        document, text = run_gate(settings, metrics)
    except VigilError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        raise typer.Exit(2) from None
    write_json_atomic(out, document)
    write_text_atomic(report, text)
    print(text, end="")
    if not document["passed"] and not settings.report_only:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
