"""params.yaml is the one home of every param value, typed and checked; the profiles overlay it cleanly.

- every section loads into its typed class, and the classes hold no default a value could hide in;
- each shipped profile, overlaid on params.yaml, still loads (what `dvc exp run $(vigil profile …)` runs);
- params hold no paths that dvc.yaml passes (a path lives in dvc.yaml's cmd/deps/outs only).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.module_imports import REPO
from vigil.models.distill import load_distill_params
from vigil.models.params import load_train_params
from vigil.params import SECTIONS, load_section, load_seed

TYPED = {  # section → class that types it (train and distill have their own loaders, checked below)
    "hash": "vigil.params.HashParams",
    "validate": "vigil.params.ValidateParams",
    "distance": "vigil.data.distance.DistanceParams",
    "split": "vigil.params.SplitParams",
    "pretrained": "vigil.models.params.PretrainedParams",
    "evaluate": "vigil.metrics.params.EvaluateParams",
    "calibrate": "vigil.release.params.CalibrateParams",
    "range": "vigil.range.params.RangeParams",
    "export": "vigil.export.params.ExportParams",
    "queue": "vigil.queue.params.QueueParams",
    "gate": "vigil.release.params.GateParams",
}


def _class(dotted: str) -> type:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def load_everything(path: Path) -> None:
    for section, dotted in TYPED.items():
        load_section(path, section, _class(dotted))
    load_train_params(path)
    load_distill_params(path)
    load_seed(path)


def test_every_section_is_known_and_typed() -> None:
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    assert list(data) == list(SECTIONS)
    assert set(TYPED) | {"seed", "train", "distill"} == set(SECTIONS)
    load_everything(REPO / "params.yaml")


def _overlay(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _overlay(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


@pytest.mark.parametrize("profile", sorted(p.name for p in (REPO / "profiles").glob("*.yaml")))
def test_each_profile_overlaid_on_params_loads(tmp_path: Path, profile: str) -> None:
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    over = yaml.safe_load((REPO / "profiles" / profile).read_text())
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(_overlay(base, over), sort_keys=False))
    load_everything(path)


def _params_classes() -> list[type]:
    """Every dataclass a section is made of: the section classes and the classes of their fields."""
    import typing

    todo: list[Any] = [_class(d) for d in TYPED.values()] + [
        _class("vigil.models.distill.DistillParams")
    ]
    seen: list[type] = []
    while todo:
        tp = todo.pop()
        if dataclasses.is_dataclass(tp) and isinstance(tp, type) and tp not in seen:
            seen.append(tp)
            todo.extend(typing.get_type_hints(tp).values())
            todo.extend(tp.__mro__[1:])
        todo.extend(typing.get_args(tp))
    return seen


def test_params_classes_have_no_defaults() -> None:
    """A default in code is a second home for a value; the two drift (they did: distill.pseudo_conf)."""
    classes = _params_classes()
    assert {c.__name__ for c in classes} >= {
        "TrainParams",
        "AugmentParams",
        "AlbumentationsStep",
        "Int8Params",
    }
    found = [
        f"{cls.__module__}.{cls.__name__}.{spec.name}"
        for cls in classes
        for spec in dataclasses.fields(cls)
        if spec.default is not dataclasses.MISSING
        or spec.default_factory is not dataclasses.MISSING
    ]
    assert not found, f"params classes with a default value (params.yaml is its home): {found}"


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [
            leaf
            for k, v in node.items()
            for leaf in _leaves(v, f"{prefix}.{k}" if prefix else str(k))
        ]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, f"{prefix}[{i}]")]
    return [(prefix, node)]


def test_params_hold_no_repository_paths() -> None:
    """`-S train.weights=x.pt` changed the file read, not the file tracked: paths live in dvc.yaml only."""
    path_like = re.compile(r"^(\./)?(models|data|artifacts|metrics|plots|reports|\.vigil)/")
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    found = [
        key for key, value in _leaves(data) if isinstance(value, str) and path_like.match(value)
    ]
    assert not found, f"params that name repository paths (pass them in dvc.yaml instead): {found}"
