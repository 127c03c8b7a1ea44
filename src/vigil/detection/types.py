"""What a detector says about one image, and what is true about it: the two records everything passes.

Both hold plain numpy arrays in original-image pixels (x1 y1 x2 y2), so a metric never depends on
how a box was produced (ultralytics, ONNX Runtime, a detections file) or where the truth came from
(the dataset's labels, the pool's withheld labels). Lists of them are aligned: truths[i] and
detections[i] are the same image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vigil.detection.boxes import as_boxes


def _ids(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class ImageDetections:
    """A detector's output for one image: boxes (M, 4) x1 y1 x2 y2 pixels, scores (M,), class ids (M,)."""

    boxes: np.ndarray = field(default_factory=lambda: as_boxes([]))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    classes: np.ndarray = field(default_factory=lambda: _ids([]))

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", as_boxes(self.boxes))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "classes", _ids(self.classes))
        if not len(self.boxes) == len(self.scores) == len(self.classes):
            raise ValueError("detections need as many scores and classes as boxes")

    def above(self, conf: float) -> ImageDetections:
        """The detections with a score of at least `conf`."""
        keep = self.scores >= conf
        return ImageDetections(self.boxes[keep], self.scores[keep], self.classes[keep])


@dataclass(frozen=True)
class ImageTruth:
    """One image's true boxes (N, 4) x1 y1 x2 y2 pixels and class ids (N,), in its width × height frame.

    `record` is the image's manifest line (strata, groups) when it came from the dataset, else empty.
    `ignore` (K, 4) are regions scoring leaves out (the manifest's `ignore`: VisDrone's ignored
    regions, COCO crowds): a detection there is neither right nor wrong. `ignore_classes` (K,) gives
    the class each region ignores, `ANY_CLASS` (-1) for every class.
    """

    image: str  # path relative to the dataset root
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: as_boxes([]))
    classes: np.ndarray = field(default_factory=lambda: _ids([]))
    record: Mapping[str, Any] = field(default_factory=dict)
    ignore: np.ndarray = field(default_factory=lambda: as_boxes([]))
    ignore_classes: np.ndarray = field(default_factory=lambda: _ids([]))

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", as_boxes(self.boxes))
        object.__setattr__(self, "classes", _ids(self.classes))
        object.__setattr__(self, "ignore", as_boxes(self.ignore))
        object.__setattr__(self, "ignore_classes", _ids(self.ignore_classes))
        if len(self.boxes) != len(self.classes):
            raise ValueError(
                f"{self.image}: {len(self.boxes)} boxes but {len(self.classes)} classes"
            )
        if len(self.ignore) != len(self.ignore_classes):
            raise ValueError(
                f"{self.image}: {len(self.ignore)} ignore regions but {len(self.ignore_classes)} classes"
            )


ANY_CLASS = -1  # an ignore region that holds for every class
