"""Distance to each object: a per-object manifest field, its unit, and the bins results are read in.

A team records how far each object is (a laser rangefinder's reading, or, on the bundled sample,
the distance its true size implies) under `objects.<field>` of the image's manifest line: one value
per label line, in yards or metres as `distance.unit` says. The value is converted to metres once,
when it is read (`object_distances`); `bins` are given in the same unit and converted alike. Objects
past the last edge form an open bin; an object without a value is in no bin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.errors import VigilError

METRES_PER: dict[str, float] = {"m": 1.0, "yd": 0.9144}


@dataclass(frozen=True)
class DistanceParams:
    field: str  # objects.<field> of a manifest line: one distance per label line
    unit: str  # m | yd: the unit of that field and of `bins`
    bins: list[float]  # increasing bin edges in `unit`; past the last edge is one open bin
    min_images_per_bin: int  # validate warns when a bin has fewer labelled images

    def __post_init__(self) -> None:
        if not self.field.strip():
            raise VigilError("give the manifest field that holds the distance", field="field")
        if self.unit not in METRES_PER:
            raise VigilError(
                f"{self.unit!r} is not a unit", field="unit", hint=f"one of {', '.join(METRES_PER)}"
            )
        edges = self.bins
        if not edges or any(not _number(e) or e < 0 for e in edges):
            raise VigilError(
                f"{edges} is not a list of distances", field="bins", hint="e.g. [0, 50, 100, 200]"
            )
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise VigilError(f"{edges} does not increase", field="bins", hint="sort the edges")
        if self.min_images_per_bin < 0:
            raise VigilError("must not be negative", field="min_images_per_bin")

    def metres(self, value: float) -> float:
        return float(value) * METRES_PER[self.unit]

    @property
    def metres_per_unit(self) -> float:
        return METRES_PER[self.unit]

    @property
    def bins_m(self) -> list[float]:
        """The bin edges in metres."""
        return [self.metres(edge) for edge in self.bins]

    def labels(self) -> list[str]:
        """One name per bin, in the params' unit: `0-50yd`, …, `400yd+` (a decimal point is written
        `_`, so a gate's dotted metric path can name the bin: `12_5-25m`)."""
        edges = [f"{e:g}".replace(".", "_") for e in self.bins]
        closed = [f"{a}-{b}{self.unit}" for a, b in zip(edges, edges[1:], strict=False)]
        return [*closed, f"{edges[-1]}{self.unit}+"]

    def bin_index(self, metres: np.ndarray) -> np.ndarray:
        """The bin of each distance in metres; -1 below the first edge or without a value (NaN)."""
        edges = np.asarray([self.metres(e) for e in self.bins])
        values = np.asarray(metres, dtype=np.float64)
        index = np.searchsorted(edges, values, side="right") - 1
        return np.where(np.isnan(values) | (values < edges[0]), -1, index)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def distance_problem(record: Mapping[str, Any], field: str, boxes: int) -> str | None:
    """What is wrong with a manifest line's distances (None: fine, or none given)."""
    objects = record.get("objects")
    if not isinstance(objects, Mapping) or field not in objects:
        return None
    values = objects[field]
    if not isinstance(values, list):
        return f"objects.{field} is not a list"
    if len(values) != boxes:
        return f"objects.{field} has {len(values)} values for {boxes} label lines"
    for n, value in enumerate(values):
        if value is not None and (not _number(value) or value < 0):
            return f"objects.{field}[{n}] = {value!r} is not a distance"
    return None


def object_distances(record: Mapping[str, Any], params: DistanceParams, boxes: int) -> np.ndarray:
    """Each label line's distance in metres (NaN: none given); a broken list is one clear error."""
    problem = distance_problem(record, params.field, boxes)
    if problem is not None:
        raise VigilError(
            f"manifest line of {record.get('image')!r}: {problem}",
            field=f"objects.{params.field}",
            hint=f"one distance in {params.unit} (or null) per label line, in label order",
        )
    objects = record.get("objects")
    values = objects.get(params.field) if isinstance(objects, Mapping) else None
    if values is None:
        return np.full(boxes, np.nan)
    return np.asarray([np.nan if v is None else params.metres(v) for v in values], dtype=np.float64)


def images_per_bin(
    records: Sequence[tuple[Mapping[str, Any], int]], params: DistanceParams
) -> dict[str, int]:
    """Labelled images holding at least one object in each bin (records: (line, label lines))."""
    counts = dict.fromkeys(params.labels(), 0)
    names = params.labels()
    for record, boxes in records:
        if distance_problem(record, params.field, boxes) is not None:
            continue  # reported on its own
        bins = params.bin_index(object_distances(record, params, boxes))
        for b in sorted({int(b) for b in bins if b >= 0}):
            counts[names[b]] += 1
    return counts


def has_distances(records: Sequence[Mapping[str, Any]], field: str) -> bool:
    return any(isinstance(r.get("objects"), Mapping) and field in r["objects"] for r in records)
