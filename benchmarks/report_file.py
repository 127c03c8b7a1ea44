"""How a benchmark hands back its table: printed, and written to `--report` when given."""

from __future__ import annotations

from pathlib import Path


def emit(report: str, path: Path | None) -> None:
    """Print `report`; also write it to `path` (its folder made) when one is given."""
    print(report)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report)
