"""The packages point one way: each imports only the layers below it, never one above.

    base (vigil's top-level modules: errors, atomic, params, offline, progress, cli_errors, …)
      → detection → data → metrics → models → sku → teachers → release → range → export → queue
      → app (cli, review, profiles, plots, stages/)

Every import is read with `ast` (module-level and function-level alike, never executed). A module
may import its own package and any layer to its left; anything else fails, naming the file, the
line and the import. `detection` and `metrics` also never import ultralytics or torch: scoring
detections does not depend on the runtime that produced them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tests.contract.module_imports import REPO, SRC, module_name

LAYERS: tuple[str, ...] = (
    "base",
    "detection",
    "data",
    "metrics",
    "models",
    "sku",  # the SKU embedder and its gallery: above models, below export/predict (issue #17)
    "teachers",
    "release",
    "range",
    "export",
    "queue",
    "app",
)
APP_MODULES = frozenset(
    {"cli", "review", "profiles", "plots", "stages"}
)  # on top of everything (stages: the scripts)
NO_RUNTIME = {"detection": ("ultralytics", "torch"), "metrics": ("ultralytics", "torch")}


def layer_of(module: str) -> str:
    """The layer of a dotted `vigil…` module name."""
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # the package itself (its __init__ sets the offline switches)
    if parts[1] in LAYERS:
        return parts[1]
    return "app" if parts[1] in APP_MODULES else "base"


def imports(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in `source`, at any depth; a relative one keeps its dots."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def violations(source: str, module: str, where: str) -> list[str]:
    """Why `source` (the code of `module`, shown as `where`) breaks the layering; empty when it does not."""
    own = layer_of(module)
    allowed = set(LAYERS[: LAYERS.index(own) + 1])
    out = []
    for line, name in imports(source):
        if name.startswith("."):
            out.append(
                f"{where}:{line}: relative import {name!r}: import vigil modules by their full name"
            )
        elif name == "vigil" or name.startswith("vigil."):
            target = layer_of(name)
            if target not in allowed:
                out.append(
                    f"{where}:{line}: imports {name} ({target}), but {own} may import only "
                    f"{', '.join(LAYERS[: LAYERS.index(own) + 1])}"
                )
        elif name.split(".")[0] in NO_RUNTIME.get(own, ()):
            out.append(
                f"{where}:{line}: imports {name}, but {own} never depends on the model runtime"
            )
    return out


def project_files() -> list[tuple[Path, str]]:
    files = [
        (path, module_name(path) or "") for path in sorted(SRC.joinpath("vigil").rglob("*.py"))
    ]
    return files + [(path, "vigil.stages") for path in sorted((REPO / "stages").glob("*.py"))]


def test_every_layer_the_layering_names_exists() -> None:
    for name in LAYERS[1:-1]:
        assert (SRC / "vigil" / name / "__init__.py").is_file(), (
            f"vigil.{name} is gone: update LAYERS"
        )


def test_packages_import_only_the_layers_below_them() -> None:
    found = [
        v
        for path, module in project_files()
        for v in violations(path.read_text(encoding="utf-8"), module, str(path.relative_to(REPO)))
    ]
    assert not found, "imports against the layering:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "module, source, expected",
    [
        (
            "vigil.metrics.coco",
            "from vigil.models.inference import Inference\n",
            "imports vigil.models.inference (models)",
        ),
        (
            "vigil.models.distill",
            "def f():\n    from vigil.release import mapping\n",
            "models.distill:2",
        ),
        (
            "vigil.data.split",
            "import vigil.detection.boxes\nimport vigil.metrics\n",
            "imports vigil.metrics (metrics)",
        ),
        (
            "vigil.errors",
            "from vigil.data.layout import read_labels\n",
            "but base may import only base",
        ),
        (
            "vigil.metrics.curves",
            "def f():\n    import torch\n",
            "never depends on the model runtime",
        ),
        ("vigil.release.gate", "from . import params\n", "relative import"),
        (
            "vigil.sku.gallery",
            "from vigil.export.predict import iter_predictions\n",
            "imports vigil.export.predict (export), but sku may import only",
        ),
    ],
)
def test_the_check_names_a_back_edge(module: str, source: str, expected: str) -> None:
    found = violations(source, module, module.replace("vigil.", ""))
    assert len(found) == 1 and expected in found[0], found


def test_allowed_imports_pass() -> None:
    source = (
        "from vigil.errors import VigilError\nfrom vigil.detection.types import ImageTruth\n"
        "from vigil.metrics.coco import evaluate_coco\nimport numpy\n"
    )
    assert violations(source, "vigil.models.evaluate", "models/evaluate.py") == []
    assert (
        violations("from vigil.export.predict import iter_predictions\n", "vigil.cli", "cli.py")
        == []
    )
