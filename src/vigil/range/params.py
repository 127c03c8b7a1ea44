"""Typed params of range estimation (`range:`) and of known distances (`distance:`); unknown keys are errors.

`DistanceParams` is the `distance:` section as `range` reads it (field, unit, bins): the unit is
converted to metres once, here, on reading (`bins_m`, `metres_per_unit`), so nothing downstream
sees yards. Loaded with `vigil.params.load_section`; every value lives in params.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vigil.errors import VigilError
from vigil.params import REPO_PATH

METHODS: tuple[str, ...] = ("geometric", "depth", "none")
METRES_PER: dict[str, float] = {"m": 1.0, "yd": 0.9144}  # the international yard, exactly
DEPTH_PATCH = 14  # Depth Anything's ViT patch: its input side must be a multiple of it


def _positive(value: float, name: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise VigilError(f"must be a positive number, got {value!r}", field=name)


@dataclass(frozen=True)
class DistanceParams:
    field: str  # the manifest `objects` key holding one distance per label line
    unit: str  # m | yd: the unit of that field and of `bins`
    bins: list[float]  # distance bin edges, in `unit`, increasing
    min_images_per_bin: int  # a bin with fewer test images is marked thin in the metrics

    def __post_init__(self) -> None:
        if not self.field.strip():
            raise VigilError("must name a manifest objects key", field="field")
        if self.unit not in METRES_PER:
            raise VigilError(
                f"unknown unit {self.unit!r}",
                field="unit",
                hint=f"choose from {', '.join(METRES_PER)}",
            )
        steps = zip(self.bins, self.bins[1:], strict=False)
        if len(self.bins) < 2 or self.bins[0] < 0 or any(lo >= hi for lo, hi in steps):
            raise VigilError(
                f"need at least two increasing, non-negative edges, got {self.bins}", field="bins"
            )
        if self.min_images_per_bin < 0:
            raise VigilError(
                f"must be at least 0, got {self.min_images_per_bin}", field="min_images_per_bin"
            )

    @property
    def metres_per_unit(self) -> float:
        return METRES_PER[self.unit]

    @property
    def bins_m(self) -> list[float]:
        """The bin edges in metres."""
        return [edge * self.metres_per_unit for edge in self.bins]


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels of a width × height image (they scale with the image)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "width", "height"):
            _positive(getattr(self, name), name)

    def scaled_to(self, width: int, height: int) -> Camera:
        """The same camera for the image resized to width × height."""
        sx, sy = width / self.width, height / self.height
        return Camera(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)


@dataclass(frozen=True)
class FitParams:
    shift: bool  # fit scale and shift of the inverse range; false: scale only (the seed's median scale)
    epsilon: (
        float  # HuberRegressor epsilon: relative residuals beyond it count linearly (mismatches)
    )
    min_objects: int  # val objects of known distance a fit needs; fewer: geometric stays unfitted

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and self.epsilon >= 1.0):
            raise VigilError(f"must be at least 1.0 (sklearn), got {self.epsilon}", field="epsilon")
        if self.min_objects < 2:
            raise VigilError(f"must be at least 2, got {self.min_objects}", field="min_objects")


@dataclass(frozen=True)
class DepthParams:
    path: str | None = field(
        metadata=REPO_PATH
    )  # Depth Anything folder (save_pretrained); null: none
    input_size: int  # square side the image is resized to, a multiple of 14
    box_fraction: float  # the disparity is the median over this central fraction of each box side

    def __post_init__(self) -> None:
        if self.input_size < DEPTH_PATCH or self.input_size % DEPTH_PATCH:
            raise VigilError(
                f"must be a positive multiple of {DEPTH_PATCH}, got {self.input_size}",
                field="input_size",
                hint="Depth Anything was trained at 518",
            )
        if not 0.0 < self.box_fraction <= 1.0:
            raise VigilError(f"must be in (0, 1], got {self.box_fraction}", field="box_fraction")


@dataclass(frozen=True)
class RangeParams:
    method: str  # geometric | depth | none: the estimator models/range.json carries
    heights: dict[str, float]  # class name → physical height in metres
    intrinsics: Camera | None  # the camera of images whose manifest line has no `intrinsics`
    iou: (
        float  # a detection takes the distance of the true box it overlaps at this IoU (same class)
    )
    min_score: float  # detections below this confidence are neither fitted nor scored
    fit: FitParams
    depth: DepthParams

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise VigilError(
                f"unknown method {self.method!r}",
                field="method",
                hint=f"choose from {', '.join(METHODS)}",
            )
        for name, height in self.heights.items():
            _positive(height, f"heights.{name}")
        if not 0.0 < self.iou <= 1.0:
            raise VigilError(f"must be in (0, 1], got {self.iou}", field="iou")
        if not 0.0 <= self.min_score < 1.0:
            raise VigilError(f"must be in [0, 1), got {self.min_score}", field="min_score")
        if self.method == "depth" and self.depth.path is None:
            raise VigilError(
                "method depth needs a depth model",
                field="depth.path",
                hint="give the folder of a Depth Anything model, or method: geometric",
            )
