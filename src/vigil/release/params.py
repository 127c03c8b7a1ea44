"""Typed params of the release stages (`calibrate:`, `gate:`); an unknown or mistyped key is an error naming it.

Loaded with `vigil.params.load_section`. The defaults here are the reference release; the
`params.yaml` sections override them key by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.errors import VigilError

METHODS: tuple[str, ...] = ("platt", "isotonic", "temperature", "identity")
CRITERIA: tuple[str, ...] = ("nll", "ece")
DECE_DIMS: tuple[str, ...] = ("confidence", "cx", "cy", "w", "h")
OPS: tuple[str, ...] = (">=", "<=", ">", "<", "==")


def _default_dece_bins() -> dict[str, int]:
    return {"confidence": 5, "cx": 2, "cy": 2, "w": 2, "h": 2}


@dataclass(frozen=True)
class CalibrateParams:
    iou: float = 0.5                 # IoU at which a detection counts as correct (same class, one GT each)
    min_score: float = 0.05          # detections below this raw score are left out of fitting and measuring
    min_samples: int = 100           # a class needs this many val detections (and both outcomes) for its own fit
    bins: int = 10                   # equal-width confidence bins of ECE and the reliability diagram
    dece_bins: dict[str, int] = field(default_factory=_default_dece_bins)  # D-ECE bins per dimension
    methods: list[str] = field(default_factory=lambda: ["platt", "isotonic", "temperature"])  # candidates
    criterion: str = "nll"           # how the candidates are compared out of fold: nll or ece
    folds: int = 5                   # k of the stratified k-fold on the val detections (test is never used)
    knots: int = 101                 # uniform score knots of the exported lookup table (plus logit-spaced ends)
    operating_threshold: float = 0.25  # raw confidence at which the deployed model keeps a box
    keep_operating_threshold: bool = True  # true: record the calibrated threshold that keeps the same boxes

    def __post_init__(self) -> None:
        if not 0.0 < self.iou <= 1.0:
            raise VigilError(f"must be in (0, 1], got {self.iou}", field="calibrate.iou")
        if not 0.0 <= self.min_score < 1.0:
            raise VigilError(f"must be in [0, 1), got {self.min_score}", field="calibrate.min_score")
        if not 0.0 < self.operating_threshold < 1.0:
            raise VigilError(f"must be in (0, 1), got {self.operating_threshold}",
                             field="calibrate.operating_threshold")
        for name, value, least in (("min_samples", self.min_samples, 2), ("bins", self.bins, 1),
                                   ("folds", self.folds, 2), ("knots", self.knots, 2)):
            if value < least:
                raise VigilError(f"must be at least {least}, got {value}", field=f"calibrate.{name}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise VigilError(f"unknown or no methods {unknown or self.methods}", field="calibrate.methods",
                             hint=f"choose from {', '.join(METHODS)}")
        if self.criterion not in CRITERIA:
            raise VigilError(f"unknown criterion {self.criterion!r}", field="calibrate.criterion",
                             hint=f"choose from {', '.join(CRITERIA)}")
        for dim, count in self.dece_bins.items():
            if dim not in DECE_DIMS:
                raise VigilError(f"unknown D-ECE dimension {dim!r}", field=f"calibrate.dece_bins.{dim}",
                                 hint=f"choose from {', '.join(DECE_DIMS)}")
            if count < 1:
                raise VigilError(f"must be at least 1, got {count}", field=f"calibrate.dece_bins.{dim}")
        if "confidence" not in self.dece_bins:
            raise VigilError("D-ECE needs a confidence dimension", field="calibrate.dece_bins.confidence")


@dataclass(frozen=True)
class GateSpec:
    """One acceptance gate: `value(metric) op threshold` must hold."""

    name: str = ""
    metric: str = ""                 # dotted path `<document>.<key>…`, or `A / B`, `A - B` of two such paths
    op: str = ">="                   # one of >=, <=, >, <, ==
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise VigilError("every gate needs a name", field="gate.gates.name")
        if not self.metric:
            raise VigilError(f"gate {self.name!r} needs a metric", field=f"gate.gates.{self.name}.metric")
        if self.op not in OPS:
            raise VigilError(f"gate {self.name!r}: unknown op {self.op!r}", field=f"gate.gates.{self.name}.op",
                             hint=f"choose from {', '.join(OPS)}")


@dataclass(frozen=True)
class GateParams:
    report_only: bool = False        # true: write the verdict but exit 0 even when a gate fails (experiments)
    gates: list[GateSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for gate in self.gates:
            if gate.name in seen:
                raise VigilError(f"duplicate gate name {gate.name!r}", field="gate.gates",
                                 hint="give every gate its own name")
            seen.add(gate.name)
