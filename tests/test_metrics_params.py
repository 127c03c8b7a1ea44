"""`evaluate:` params: the fragment loads, unknown keys and bad buckets are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.errors import VigilError
from vigil.metrics.params import EvaluateParams
from vigil.params import build, load_section

REPO = Path(__file__).resolve().parents[1]


def params_file() -> Path:
    """params.yaml once the fragment is merged, the fragment until then."""
    merged = REPO / "params.yaml"
    return merged if "evaluate:" in merged.read_text() else REPO / "params.evaluate.yaml"


def test_the_params_file_loads_and_matches_the_defaults() -> None:
    loaded = load_section(params_file(), "evaluate", EvaluateParams)
    assert loaded == EvaluateParams()
    assert loaded.area_ranges()["tiny"] == (0.0, 256.0) and loaded.area_ranges()["xlarge"] == (96.0 ** 2, 1e10)


@pytest.mark.parametrize(("values", "field"), [
    ({"imgsz": 320, "confidence": 0.1}, "evaluate.confidence"),
    ({"imgsz": 300}, "evaluate.imgsz"),
    ({"conf": 1.5}, "evaluate.conf"),
    ({"max_det": "100"}, "evaluate.max_det"),
    ({"size_buckets": {"tiny": [16, 8]}}, "evaluate.size_buckets.tiny"),
    ({"size_buckets": {"tiny": [16]}}, "evaluate.size_buckets.tiny"),
    ({"size_buckets": {"coco_small": [0, 8]}}, "evaluate.size_buckets.coco_small"),
])
def test_bad_params_are_refused_naming_the_key(values: dict, field: str) -> None:
    with pytest.raises(VigilError) as err:
        build(EvaluateParams, values, "evaluate")
    assert err.value.field == field


def test_the_stage_depends_on_every_metrics_module_and_plots_every_model() -> None:
    import re

    import yaml

    merged = yaml.safe_load((REPO / "dvc.yaml").read_text())
    spec = merged if "evaluate" in merged.get("stages", {}) else yaml.safe_load((REPO / "dvc.evaluate.yaml").read_text())
    stage = spec["stages"]["evaluate"]
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "src/vigil/metrics").glob("*.py") if p.name != "__init__.py"}
    assert modules <= set(stage["deps"]) and "stages/evaluate.py" in stage["deps"]
    models = re.findall(r"--model (\w+)\??=(\S+)", stage["cmd"])
    assert {path for _, path in models} <= set(stage["deps"])
    plots = {k: v for entry in spec["plots"] for k, v in entry.items()}
    assert plots["plots/evaluate/pr"]["y"] == [name for name, _ in models]
    assert {f"plots/evaluate/{name}/confusion.json" for name, _ in models} <= set(plots)
    # calibrate's inputs (dvc.release.yaml) are this stage's outputs
    release = yaml.safe_load((REPO / "dvc.release.yaml").read_text()) if (REPO / "dvc.release.yaml").is_file() else merged
    calibrate_deps = {d for d in release["stages"]["calibrate"]["deps"] if d.startswith("artifacts/evaluate/")}
    assert calibrate_deps and calibrate_deps <= {o for o in stage["outs"] if isinstance(o, str)}
