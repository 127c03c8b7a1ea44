"""Typed params of range estimation (`range:`); unknown keys are errors. The known distances
(`distance:`) are `vigil.data.distance.DistanceParams`. Loaded with `vigil.params.load_section`;
every value lives in params.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vigil.errors import VigilError
from vigil.params import REPO_PATH

METHODS: tuple[str, ...] = ("geometric", "depth", "none")
DEPTH_PATCH = 14  # Depth Anything's ViT patch: its input side must be a multiple of it


def _positive(value: float, name: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise VigilError(f"must be a positive number, got {value!r}", field=name)


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
