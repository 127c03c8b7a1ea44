"""The `queue:` section of params.yaml: how `vigil queue rank` orders the pool and what it writes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vigil.errors import VigilError

METHODS: tuple[str, ...] = ("low_confidence", "disagreement", "random")


@dataclass(frozen=True)
class QueueParams:
    method: str  # low_confidence | disagreement | random (vigil.queue.scoring)
    top: int  # images the queue folder holds (the top N of the ranking)
    conf: float  # raw-score floor of the detections ranked and shown as guesses
    iou: float  # disagreement: IoU at which a teacher box and a student box agree (same class)
    crop_margin: float  # each crop extends its box by this fraction of the box side on every side

    def __post_init__(self) -> None:
        """A known method, a positive count, fractions in range; each failure names its key."""
        if self.method not in METHODS:
            raise VigilError(
                f"unknown method {self.method!r}",
                field="method",
                hint=f"choose from {', '.join(METHODS)}",
            )
        if self.top < 1:
            raise VigilError(f"{self.top} is not a positive count", field="top", hint="e.g. 50")
        for name, high in (("conf", 1.0), ("iou", 1.0), ("crop_margin", 10.0)):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= high):
                raise VigilError(
                    f"{value!r} is out of range: it must be in [0, {high:g}]",
                    field=name,
                    hint=f"set queue.{name} in params.yaml to a value in range",
                )
        if self.iou == 0.0:
            raise VigilError("0 would match any two boxes", field="iou", hint="e.g. 0.5")
