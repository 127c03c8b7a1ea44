"""Typed params: `params.yaml` loads into dataclasses; an unknown or mistyped key is an error naming it."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vigil.errors import VigilError

T = TypeVar("T")


REPO_PATH = {
    "repo_path": True
}  # field metadata: the value is a path that must stay inside the repository


def check_repo_path(value: str | None, field_name: str) -> None:
    """A path from params may not leave the repository: relative, no `..`, no home or drive."""
    if value is None:
        return
    parts = Path(value.replace("\\", "/")).parts
    if (
        Path(value).is_absolute()
        or value.startswith("~")
        or ".." in parts
        or (parts and ":" in parts[0])
    ):
        raise VigilError(
            f"path {value!r} leaves the repository",
            field=field_name,
            hint="params paths are relative to the repository root, without '..'",
        )


@dataclass(frozen=True)
class HashParams:
    workers: int  # threads hashing files in parallel


@dataclass(frozen=True)
class AllowedValues:
    """The allowed values of each manifest stratum (what gates may name, and what the data may hold)."""

    stream: list[str]
    scenario: list[str]
    road_type: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"stream": self.stream, "scenario": self.scenario, "road_type": self.road_type}

    def __post_init__(self) -> None:
        """Each stratum: at least one value, each a non-empty string, unique, and not the gates' `*`."""
        for key, values in self.as_dict().items():
            if not values:
                raise VigilError(
                    "no allowed values", field=key, hint="list the values this stratum may take"
                )
            for i, value in enumerate(values):
                if not value.strip() or value == "*" or not value.isprintable():
                    raise VigilError(
                        f"{value!r} is not a usable value",
                        field=f"{key}[{i}]",
                        hint="printable non-empty text, not `*` (the gates' wildcard)",
                    )
                if value in values[:i]:
                    raise VigilError(
                        f"{value!r} is listed twice",
                        field=f"{key}[{i}]",
                        hint="list each value once",
                    )


@dataclass(frozen=True)
class ValidateParams:
    allowed: AllowedValues
    min_per_class: int  # boxes per class below this → warning (coverage)
    min_per_stratum: int  # labelled images per stratum value below this → warning (coverage)
    max_image_side: int  # a header claiming more is refused before decoding
    min_image_side: int  # a decoded image with a smaller side is refused (unusable)
    min_box_side: float  # a box with a side below this many pixels → warning
    edge_tolerance: float  # a box may stick out of the image by this fraction before a warning
    near_duplicate_bits: (
        int  # perceptual-hash distance (of 64 bits) that counts as a near-duplicate
    )
    workers: int  # threads decoding images

    def __post_init__(self) -> None:
        """Every number in its range, named (`validate.max_image_side: -1` is refused, not obeyed)."""
        ranges: dict[str, tuple[float, float]] = {
            "min_per_class": (0, math.inf),
            "min_per_stratum": (0, math.inf),
            "max_image_side": (1, 1 << 20),
            "min_image_side": (1, self.max_image_side),
            "min_box_side": (0, self.max_image_side),
            "edge_tolerance": (0, 1),
            "near_duplicate_bits": (0, 64),
            "workers": (1, 256),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise VigilError(f"{value!r} is not a finite number", field=name)
            if not low <= value <= high:
                bound = f"[{low:g}, {high:g}]" if high != math.inf else f"at least {low:g}"
                raise VigilError(
                    f"{value!r} is out of range: it must be {bound}",
                    field=name,
                    hint=f"set validate.{name} in params.yaml to a value in range",
                )


SPLIT_STRATEGIES = ("components", "interlocked")


@dataclass(frozen=True)
class SplitParams:
    train: float  # fractions of the labelled images (of the kept ones under `interlocked`)
    val: float
    test: float
    group_keys: list[
        str
    ]  # images sharing a value of any of these (or session, or bytes) stay together
    stratify: list[str]  # balanced across splits as far as the groups allow
    strategy: str  # components | interlocked (see vigil.data.split_interlocked)
    interlock_keys: list[
        str
    ]  # `interlocked`: the two keys held out together (e.g. driver_id, vehicle_id)
    interlock_tolerance: (
        float  # `interlocked`: how far a split's share of the kept images may miss its fraction
    )

    def __post_init__(self) -> None:
        """Fractions finite, in [0, 1] and summing to 1; a known strategy; two distinct interlock keys."""
        for name in ("train", "val", "test", "interlock_tolerance"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise VigilError(
                    f"{value} is not a finite number", field=name, hint="use a number in [0, 1]"
                )
            if not 0.0 <= value <= 1.0:
                what = "negative" if value < 0 else "above 1"
                raise VigilError(f"{value} is {what}", field=name, hint="use a number in [0, 1]")
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise VigilError(
                f"train + val + test = {total:g}, not 1",
                field="train+val+test",
                hint="make the three fractions sum to 1",
            )
        if self.strategy not in SPLIT_STRATEGIES:
            raise VigilError(
                f"unknown strategy {self.strategy!r}",
                field="strategy",
                hint=f"choose from {', '.join(SPLIT_STRATEGIES)}",
            )
        keys = self.interlock_keys
        if len(keys) != 2 or len(set(keys)) != 2 or not all(k.strip() for k in keys):
            raise VigilError(
                f"need two different keys, got {keys}",
                field="interlock_keys",
                hint="e.g. [driver_id, vehicle_id]",
            )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
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
        return {
            _coerce(k, key_tp, where): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()
        }
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
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise VigilError(f"expected a finite number, got {value!r}", field=where)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise VigilError(f"expected {tp.__name__}, got {value!r}", field=where)
        return value
    return value


def build(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a mapping: every key required, unknown keys and wrong types refused.

    params.yaml is the only home of a value, so the classes have no defaults: a missing key is an error.
    A class checks its ranges in `__post_init__`, naming the field relative to itself; the field is
    named here in full (`export.int8.method`), so one class serves any section it is loaded from.
    """
    if not isinstance(values, dict):
        raise VigilError(f"expected a mapping, got {type(values).__name__}", field=where or None)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names), key=str)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else str(unknown[0])
        raise VigilError(
            f"unknown key {key!r}", field=key, hint=f"known keys here: {', '.join(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    missing = [n for n in names if n not in values]
    if missing:
        key = f"{where}.{missing[0]}" if where else missing[0]
        raise VigilError(
            f"missing key {key!r}", field=key, hint="params.yaml holds every value; add the key"
        )
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if spec.metadata.get("repo_path"):
            check_repo_path(kwargs[spec.name], f"{where}.{spec.name}" if where else spec.name)
    try:
        return cls(**kwargs)
    except VigilError as exc:
        if where and exc.field and not exc.field.startswith(f"{where}."):
            exc = VigilError(
                exc.message,
                path=exc.path,
                line=exc.line,
                field=f"{where}.{exc.field}",
                hint=exc.hint,
            )
        raise exc from None


SECTIONS = (
    "seed",
    "hash",
    "validate",
    "distance",
    "split",
    "pretrained",
    "train",
    "distill",
    "evaluate",
    "calibrate",
    "range",
    "export",
    "queue",
    "gate",
)  # the top-level keys of params.yaml: one per stage that has params, and the seed


def load_yaml(path: Path) -> dict[str, Any]:
    """A params file as a mapping of known sections (a misspelled section is an error, not ignored)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError("params file not found", path=path) from None
    except UnicodeDecodeError as exc:
        raise VigilError(
            f"not UTF-8 text (byte {exc.start})", path=path, hint="save the file as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise VigilError(f"not valid YAML: {exc}", path=path) from None
    except (OSError, RecursionError) as exc:
        raise VigilError(f"cannot read: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise VigilError("the params file must be a mapping of sections", path=path)
    unknown = sorted((k for k in data if k not in SECTIONS), key=str)
    if unknown:
        raise VigilError(
            f"unknown section {unknown[0]!r}",
            path=path,
            field=str(unknown[0]),
            hint=f"known sections: {', '.join(SECTIONS)}",
        )
    return data


def load_section(path: Path, section: str, cls: type[T]) -> T:
    """Load one section of params.yaml (the one a stage reads) into its typed object."""
    if section not in SECTIONS:
        raise ValueError(
            f"{section!r} is not a params section"
        )  # a programming error, not the user's
    data = load_yaml(path)
    if section not in data:
        raise VigilError(
            f"missing section {section!r}",
            path=path,
            field=section,
            hint="params.yaml holds every value; copy the section from the repository's params.yaml",
        )
    try:
        return build(cls, data[section], section)
    except VigilError as exc:
        raise VigilError(exc.message, path=path, field=exc.field, hint=exc.hint) from None


def load_seed(path: Path) -> int:
    """The top-level `seed` every stage derives its randomness from."""
    data = load_yaml(path)
    if "seed" not in data:
        raise VigilError(
            "missing key 'seed'", path=path, field="seed", hint="params.yaml holds every value"
        )
    value = data["seed"]
    if not isinstance(value, int) or isinstance(value, bool):
        raise VigilError(f"expected an integer, got {value!r}", path=path, field="seed")
    return value


def default_params_file() -> Path:
    """The params.yaml a command uses when not given one: the working directory's, else the repository's.

    The repository's is the one next to `src/` of this (editable) install, so `vigil data check` run
    from any folder still reads the values from their one home.
    """
    here = Path("params.yaml")
    if here.is_file():
        return here
    repo = Path(__file__).resolve().parents[2] / "params.yaml"
    if repo.is_file():
        return repo
    raise VigilError(
        "no params.yaml here and none beside the vigil sources",
        field="--params",
        hint="pass --params PATH (copy the repository's params.yaml)",
    )
