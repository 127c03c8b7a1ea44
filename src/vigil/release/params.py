"""Typed params of the release stages (`calibrate:`, `gate:`); an unknown or mistyped key is an error naming it.

Loaded with `vigil.params.load_section`. Every value lives in params.yaml; these classes only type and check it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.errors import VigilError

METHODS: tuple[str, ...] = ("platt", "isotonic", "temperature", "position", "identity")
CRITERIA: tuple[str, ...] = ("nll", "ece")
DECE_DIMS: tuple[str, ...] = ("confidence", "cx", "cy", "w", "h")
BOX_DIMS: tuple[str, ...] = DECE_DIMS[1:]  # the box geometry: centre and size
OPS: tuple[str, ...] = (">=", "<=", ">", "<", "==")


@dataclass(frozen=True)
class CalibrateParams:
    iou: float  # IoU at which a detection counts as correct (same class, one GT each)
    min_score: float  # detections below this raw score are left out of fitting and measuring
    min_samples: int  # a class needs this many val detections (and both outcomes) for its own fit
    bins: int  # equal-width confidence bins of ECE and the reliability diagram
    dece_bins: dict[str, int]  # D-ECE bins per dimension
    methods: list[str]  # candidates
    position_features: list[str]  # box geometry the `position` method adds to logit(score)
    position_c: float  # inverse L2 strength of the `position` logistic regression (sklearn's C)
    criterion: str  # how the candidates are compared out of fold: nll or ece
    folds: int  # k of the stratified k-fold on the val detections (test is never used)
    knots: int  # uniform score knots of the exported lookup table (plus logit-spaced ends)
    operating_threshold: float  # raw confidence at which the deployed model keeps a box
    keep_operating_threshold: (
        bool  # true: record the calibrated threshold that keeps the same boxes
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.iou <= 1.0:
            raise VigilError(f"must be in (0, 1], got {self.iou}", field="iou")
        if not 0.0 <= self.min_score < 1.0:
            raise VigilError(f"must be in [0, 1), got {self.min_score}", field="min_score")
        if not 0.0 < self.operating_threshold < 1.0:
            raise VigilError(
                f"must be in (0, 1), got {self.operating_threshold}", field="operating_threshold"
            )
        for name, value, least in (
            ("min_samples", self.min_samples, 2),
            ("bins", self.bins, 1),
            ("folds", self.folds, 2),
            ("knots", self.knots, 2),
        ):
            if value < least:
                raise VigilError(f"must be at least {least}, got {value}", field=f"{name}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise VigilError(
                f"unknown or no methods {unknown or self.methods}",
                field="methods",
                hint=f"choose from {', '.join(METHODS)}",
            )
        bad = [f for f in self.position_features if f not in BOX_DIMS]
        if (
            bad
            or not self.position_features
            or len(set(self.position_features)) < len(self.position_features)
        ):
            raise VigilError(
                f"must be distinct names from {', '.join(BOX_DIMS)}, got {self.position_features}",
                field="position_features",
            )
        if not (self.position_c > 0 and self.position_c < float("inf")):
            raise VigilError(
                f"must be a positive number, got {self.position_c}", field="position_c"
            )
        if self.criterion not in CRITERIA:
            raise VigilError(
                f"unknown criterion {self.criterion!r}",
                field="criterion",
                hint=f"choose from {', '.join(CRITERIA)}",
            )
        for dim, count in self.dece_bins.items():
            if dim not in DECE_DIMS:
                raise VigilError(
                    f"unknown D-ECE dimension {dim!r}",
                    field=f"dece_bins.{dim}",
                    hint=f"choose from {', '.join(DECE_DIMS)}",
                )
            if count < 1:
                raise VigilError(f"must be at least 1, got {count}", field=f"dece_bins.{dim}")
        if "confidence" not in self.dece_bins:
            raise VigilError("D-ECE needs a confidence dimension", field="dece_bins.confidence")


@dataclass(frozen=True)
class GateSpec:
    """One acceptance gate: `value(metric) op threshold` must hold."""

    name: str
    metric: str  # dotted path `<document>.<key>…`, or `A / B`, `A - B` of two such paths
    op: str  # one of >=, <=, >, <, ==
    threshold: float

    def __post_init__(self) -> None:
        if not self.name:
            raise VigilError("every gate needs a name", field="name")
        if not self.metric:
            raise VigilError(f"gate {self.name!r} needs a metric", field="metric")
        if self.op not in OPS:
            raise VigilError(
                f"gate {self.name!r}: unknown op {self.op!r}",
                field="op",
                hint=f"choose from {', '.join(OPS)}",
            )


@dataclass(frozen=True)
class GateParams:
    report_only: bool  # true: write the verdict but exit 0 even when a gate fails (experiments)
    gates: list[GateSpec]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for gate in self.gates:
            if gate.name in seen:
                raise VigilError(
                    f"duplicate gate name {gate.name!r}",
                    field="gates",
                    hint="give every gate its own name",
                )
            seen.add(gate.name)
