"""dvc.yaml's stages as DVC runs them: `${var}` references resolved from its top-level `vars`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from contract.module_imports import REPO


def _vars(doc: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in doc.get("vars", []):
        if isinstance(entry, dict):
            found.update({k: str(v) for k, v in entry.items()})
    return found


def resolved_stages() -> dict[str, dict[str, Any]]:
    """Every stage of dvc.yaml with `${name}` replaced by its var (the params-file vars are not used here)."""
    doc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    values = _vars(doc)

    def resolve(node: Any) -> Any:
        if isinstance(node, str):
            return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], node)
        if isinstance(node, list):
            return [resolve(v) for v in node]
        if isinstance(node, dict):
            return {resolve(k): resolve(v) for k, v in node.items()}
        return node

    return resolve(doc["stages"])


def placeholder(path: Path) -> None:
    """Stand-in content for a dep or out that a DVC-only test needs to exist (a file or a folder)."""
    if path.exists():
        return
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")
    else:
        path.mkdir(parents=True)
        (path / "placeholder.txt").write_text("placeholder\n")
