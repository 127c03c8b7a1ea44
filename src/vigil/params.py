"""Typed params: `params.yaml` loads into dataclasses; an unknown or mistyped key is an error naming it."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vigil.errors import VigilError

T = TypeVar("T")


REPO_PATH = {"repo_path": True}  # field metadata: the value is a path that must stay inside the repository


def check_repo_path(value: str | None, field_name: str) -> None:
    """A path from params may not leave the repository: relative, no `..`, no home or drive."""
    if value is None:
        return
    parts = Path(value.replace("\\", "/")).parts
    if Path(value).is_absolute() or value.startswith("~") or ".." in parts or (parts and ":" in parts[0]):
        raise VigilError(f"path {value!r} leaves the repository", field=field_name,
                         hint="params paths are relative to the repository root, without '..'")


@dataclass(frozen=True)
class HashParams:
    workers: int = 2                 # threads hashing files in parallel
    cache: str = field(default=".vigil/hash-cache.json", metadata=REPO_PATH)  # (path, size, mtime) → sha256 cache


@dataclass(frozen=True)
class AllowedValues:
    stream: list[str] = field(default_factory=lambda: ["cctv", "stills"])
    scenario: list[str] = field(default_factory=lambda: ["day", "dusk", "night"])
    road_type: list[str] = field(default_factory=lambda: ["campus", "street", "indoor", "nature"])


@dataclass(frozen=True)
class ValidateParams:
    allowed: AllowedValues = field(default_factory=AllowedValues)
    min_per_class: int = 20          # boxes per class below this → warning (coverage)
    min_per_stratum: int = 10        # labelled images per stratum value below this → warning (coverage)
    max_image_side: int = 8192       # a header claiming more is refused before decoding
    edge_tolerance: float = 0.01     # a box may stick out of the image by this fraction before a warning
    near_duplicate_bits: int = 4     # perceptual-hash distance (of 64 bits) that counts as a near-duplicate
    workers: int = 2                 # threads decoding images


@dataclass(frozen=True)
class SplitParams:
    train: float = 0.7
    val: float = 0.15
    test: float = 0.15
    group_keys: list[str] = field(default_factory=lambda: ["driver_id", "vehicle_id"])
    stratify: list[str] = field(default_factory=lambda: ["scenario", "stream"])


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise VigilError(f"expected a mapping, got {type(value).__name__}", field=where)
        return build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise VigilError(f"expected a list, got {type(value).__name__}", field=where)
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise VigilError(f"expected a mapping, got {type(value).__name__}", field=where)
        key_tp, val_tp = typing.get_args(tp)
        return {_coerce(k, key_tp, where): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _coerce(value, arg, where)
                except VigilError:
                    continue
        raise VigilError(f"{value!r} does not fit {tp}", field=where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise VigilError(f"expected {tp.__name__}, got {value!r}", field=where)
        return value
    return value


def build(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a mapping, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise VigilError(f"unknown key {key!r}", field=key, hint=f"known keys here: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if spec.metadata.get("repo_path") and spec.name in kwargs:
            check_repo_path(kwargs[spec.name], f"{where}.{spec.name}" if where else spec.name)
    return cls(**kwargs)


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError("params file not found", path=path) from None
    except yaml.YAMLError as exc:
        raise VigilError(f"not valid YAML: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise VigilError("the params file must be a mapping of sections", path=path)
    return data


def load_section(path: Path, section: str, cls: type[T]) -> T:
    """Load one section of params.yaml (the one a stage reads) into its typed object."""
    data = load_yaml(path)
    try:
        return build(cls, data.get(section) or {}, section)
    except VigilError as exc:
        exc.path = str(path)
        raise VigilError(exc.message, path=path, field=exc.field, hint=exc.hint) from None


def load_seed(path: Path) -> int:
    value = load_yaml(path).get("seed", 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise VigilError(f"expected an integer, got {value!r}", path=path, field="seed")
    return value
