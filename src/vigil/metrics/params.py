"""Typed `evaluate:` params; an unknown key, a wrong type or an empty size bucket is an error naming it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vigil.errors import VigilError


@dataclass(frozen=True)
class RobustnessParams:
    """Test mAP under corruption presets at fixed severities (vigil.models.augment_presets)."""

    models: list[str]  # evaluated models that get the table (the release subject)
    presets: list[str]  # preset names
    severities: dict[str, float]  # severity name → intensity in (0, 1]

    def __post_init__(self) -> None:
        for name, value in self.severities.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise VigilError(
                    f"{value!r} is not in (0, 1]", field=f"robustness.severities.{name}"
                )
            if "." in name or "*" in name:
                raise VigilError(
                    f"{name!r} cannot be named in a gate's dotted path",
                    field=f"robustness.severities.{name}",
                    hint="use letters, digits, _ and -",
                )


@dataclass(frozen=True)
class EvaluateParams:
    imgsz: (
        int | None
    )  # square inference size, a multiple of 32; null = as each checkpoint was trained
    conf: float  # floor of the detections scored for mAP (COCO practice: keep nearly all)
    iou: float  # NMS IoU threshold (ultralytics' val default)
    max_det: int  # detections kept per image (COCO scores at most 100: AR@100)
    count_conf: (
        float  # the deployed detector's confidence: counts, confusion matrix and latency use it
    )
    confusion_iou: float  # IoU a detection needs to match a true box in the confusion matrix
    latency_runs: int  # timed single-image predictions (cycling over the test images)
    latency_warmup: int  # untimed predictions first (allocations, lazy init)
    latency_threads: int  # torch CPU threads while timing (ultralytics' own choice is cores - 1)
    cross_check: bool  # also run ultralytics' own `val` on the same images (mAP50, mAP50-95)
    val_batch: int  # batch of that cross-check
    # manifest fields with mAP per value (per_stratum), and group fields with mAP per group (per_group)
    strata: list[str]
    groups: list[str]
    # size buckets by box side sqrt(w*h) in original-image pixels: name → [min, max]; max null = no upper bound
    size_buckets: dict[str, list[float | None]]
    # error gallery: model name → how many test images with the most missed (and the most false) boxes
    gallery: dict[str, int]
    robustness: RobustnessParams

    def __post_init__(self) -> None:
        if self.imgsz is not None and (self.imgsz <= 0 or self.imgsz % 32):
            raise VigilError(f"imgsz {self.imgsz} is not a positive multiple of 32", field="imgsz")
        for name in ("conf", "iou", "count_conf", "confusion_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise VigilError(f"{value} is not within [0, 1]", field=f"{name}")
        for name in ("max_det", "latency_runs", "latency_threads", "val_batch"):
            if getattr(self, name) < 1:
                raise VigilError("must be at least 1", field=f"{name}")
        if self.latency_warmup < 0:
            raise VigilError("must not be negative", field="latency_warmup")
        for name, edges in self.size_buckets.items():
            where = f"size_buckets.{name}"
            if name.startswith("coco_"):
                raise VigilError("names starting with coco_ are COCO's own sizes", field=where)
            if len(edges) != 2 or edges[0] is None:
                raise VigilError(f"{edges} is not [min, max] (max may be null)", field=where)
            low, high = edges[0], math.inf if edges[1] is None else edges[1]
            if low < 0 or high <= low:
                raise VigilError(
                    f"[{low}, {edges[1]}] is an empty range",
                    field=where,
                    hint="give the box side in pixels, min < max",
                )

        for name, count in self.gallery.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise VigilError(
                    f"{count!r} is not a count of images",
                    field=f"gallery.{name}",
                    hint="0 or more images per kind (most missed, most false)",
                )

    def area_ranges(self) -> dict[str, tuple[float, float]]:
        """The buckets as COCOeval area ranges (side² in px²; an open upper end is COCO's 1e5²)."""
        return {
            name: (float(lo) ** 2, (1e5 if hi is None else float(hi)) ** 2)  # type: ignore[arg-type]
            for name, (lo, hi) in self.size_buckets.items()
        }
