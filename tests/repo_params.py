"""The repository's params.yaml, typed: tests start from the real values (their only home) and change a few."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from vigil.params import load_section

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"


def section(name: str, cls: type[T], **changes: Any) -> T:
    """params.yaml's section `name` as `cls`, with `changes` replaced (checked again on construction)."""
    return dataclasses.replace(load_section(PARAMS, name, cls), **changes)  # type: ignore[type-var]


def write_params(tmp_path: Path, changes: dict[str, Any], drop: tuple[str, ...] = ()) -> Path:
    """A copy of params.yaml in `tmp_path` with dotted keys set (`{"train.epochs": 2}`) or dropped."""
    import yaml

    data = yaml.safe_load(PARAMS.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    for dotted in drop:
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def raw(name: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """params.yaml's section `name` as plain data, with `changes` merged in (nested mappings key by key)."""
    import yaml

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return over

    return merge(yaml.safe_load(PARAMS.read_text())[name], changes or {})
