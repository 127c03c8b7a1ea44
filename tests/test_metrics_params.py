"""`evaluate:` params: the section loads, unknown keys and bad buckets are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.errors import VigilError
from vigil.metrics.params import EvaluateParams
from vigil.params import build, load_section

REPO = Path(__file__).resolve().parents[1]


def test_the_params_file_loads() -> None:
    loaded = load_section(REPO / "params.yaml", "evaluate", EvaluateParams)
    assert loaded.area_ranges()["tiny"] == (0.0, 256.0) and loaded.area_ranges()["xlarge"] == (
        96.0**2,
        1e10,
    )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"imgsz": 320, "confidence": 0.1}, "evaluate.confidence"),
        ({"imgsz": 300}, "evaluate.imgsz"),
        ({"conf": 1.5}, "evaluate.conf"),
        ({"max_det": "100"}, "evaluate.max_det"),
        ({"size_buckets": {"tiny": [16, 8]}}, "evaluate.size_buckets.tiny"),
        ({"size_buckets": {"tiny": [16]}}, "evaluate.size_buckets.tiny"),
        ({"size_buckets": {"coco_small": [0, 8]}}, "evaluate.size_buckets.coco_small"),
    ],
)
def test_bad_params_are_refused_naming_the_key(values: dict, field: str) -> None:
    import yaml

    shipped = yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]
    with pytest.raises(VigilError) as err:
        build(EvaluateParams, {**shipped, **values}, "evaluate")
    assert err.value.field == field


def test_the_stage_scores_every_model_it_depends_on_and_plots_each() -> None:
    import re

    import yaml

    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    stage = spec["stages"]["evaluate"]
    assert (
        "stages/evaluate.py" in stage["deps"]
    )  # the code it imports: tests/contract/test_deps_closure.py
    models = re.findall(r"--model (\w+)\??=(\S+)", stage["cmd"])
    assert {path for _, path in models} <= set(stage["deps"])
    plots = {
        k: v
        for entry in spec["plots"]
        for k, v in (entry.items() if isinstance(entry, dict) else [(entry, None)])
    }
    assert plots["plots/evaluate/pr"]["y"] == [name for name, _ in models]
    assert {f"plots/evaluate/{name}/confusion.json" for name, _ in models} <= set(plots)
    # the error gallery is declared as image plots, for models the stage evaluates
    assert "plots/evaluate/gallery" in plots
    gallery = yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["gallery"]
    assert gallery and set(gallery) <= {name for name, _ in models}
    # calibrate's inputs are this stage's outputs
    calibrate_deps = {
        d for d in spec["stages"]["calibrate"]["deps"] if d.startswith("artifacts/evaluate/")
    }
    assert calibrate_deps and calibrate_deps <= {o for o in stage["outs"] if isinstance(o, str)}


@pytest.mark.parametrize(
    ("severities", "fragment"),
    [
        ({"mild": 0.0}, "not in (0, 1]"),
        ({"mild": 1.5}, "not in (0, 1]"),
        ({"a.b": 0.3}, "dotted path"),
    ],
)
def test_robustness_severities_are_refused_naming_the_key(severities: dict, fragment: str) -> None:
    from vigil.metrics.params import RobustnessParams

    with pytest.raises(VigilError) as caught:
        RobustnessParams(["student"], ["fog"], severities)
    assert fragment in caught.value.message
    assert caught.value.field == f"robustness.severities.{next(iter(severities))}"
