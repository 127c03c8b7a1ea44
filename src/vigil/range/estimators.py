"""One interface over both estimators: the boxes of one image in, an inverse-range signal per box out.

`fit.InverseAffine` turns either signal into metres, so the stage fits, scores and ships both the
same way, and `vigil predict` applies whichever `models/range.json` names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vigil.errors import VigilError
from vigil.range.depth import disparity_map, sample_boxes
from vigil.range.geometric import inverse_range
from vigil.range.params import Camera


@dataclass(frozen=True)
class Sighting:
    """The boxes of one image (xyxy pixels of its width × height frame) and what ranging them needs."""

    width: int
    height: int
    boxes: np.ndarray  # (n, 4) x1 y1 x2 y2
    classes: np.ndarray  # (n,) class ids
    camera: Callable[[], Camera]  # the image's camera (raises a VigilError when it has none)
    pixels: Callable[[], np.ndarray]  # the image, BGR, read only by an estimator that looks at it


class RangeEstimator(Protocol):
    @property
    def name(self) -> str:
        """`geometric` or `depth`: the metrics block and the range file's method."""
        ...

    def signal(self, sighting: Sighting) -> np.ndarray:
        """(n,) inverse-range signal per box, NaN where there is none."""
        ...


def class_heights(names: Sequence[str], heights: Mapping[str, float]) -> np.ndarray:
    """Height in metres per class id (`names[i]` = class i); every class needs one, every entry a class."""
    unknown = sorted(set(heights) - set(names))
    if unknown:
        raise VigilError(
            f"{unknown[0]!r} is not a class of this dataset",
            field=f"range.heights.{unknown[0]}",
            hint=f"classes: {', '.join(names)}",
        )
    missing = [n for n in names if n not in heights]
    if missing:
        raise VigilError(
            f"class {missing[0]!r} has no height",
            field="range.heights",
            hint="give every class its physical height in metres",
        )
    return np.array([heights[n] for n in names], dtype=np.float64)


@dataclass(frozen=True)
class GeometricEstimator:
    """h / (fy · H): box height in pixels, the class's height in metres, the camera's focal length."""

    heights_m: np.ndarray  # per class id
    name: str = "geometric"

    def signal(self, sighting: Sighting) -> np.ndarray:
        classes = np.asarray(sighting.classes, dtype=np.int64)
        if not len(classes):
            return np.zeros(0)
        known = (classes >= 0) & (classes < len(self.heights_m))
        tall = np.where(known, self.heights_m[np.clip(classes, 0, len(self.heights_m) - 1)], np.nan)
        boxes = np.asarray(sighting.boxes, dtype=np.float64).reshape(-1, 4)
        return inverse_range(boxes[:, 3] - boxes[:, 1], tall, sighting.camera().fy)


@dataclass(frozen=True)
class DepthEstimator:
    """Depth Anything's relative disparity, median over the central `box_fraction` of each box."""

    model: Any
    input_size: int
    box_fraction: float
    name: str = "depth"

    def signal(self, sighting: Sighting) -> np.ndarray:
        if not len(sighting.boxes):
            return np.zeros(0)
        disparity = disparity_map(self.model, sighting.pixels(), self.input_size)
        return sample_boxes(disparity, sighting.boxes, self.box_fraction)
