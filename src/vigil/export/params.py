"""Typed params of the `export` stage (`export:` in params.yaml); an unknown or mistyped key is an error naming it."""

from __future__ import annotations

from dataclasses import dataclass

from vigil.errors import VigilError
from vigil.export.onnx_int8 import EXCLUDE_MODES, METHODS


@dataclass(frozen=True)
class Int8Recipe:
    method: str  # activation calibration: minmax | entropy | percentile
    exclude: str  # nodes kept float: none | post | post+last | head (see vigil.export.onnx_int8)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise VigilError(
                f"unknown method {self.method!r}",
                field="method",
                hint=f"choose from {', '.join(METHODS)}",
            )
        if self.exclude not in EXCLUDE_MODES:
            raise VigilError(
                f"unknown exclusion {self.exclude!r}",
                field="exclude",
                hint=f"choose from {', '.join(EXCLUDE_MODES)}",
            )

    @property
    def label(self) -> str:
        return f"{self.method}/{self.exclude}"


@dataclass(frozen=True)
class Int8Params:
    recipes: list[Int8Recipe]  # tried in order; the best val mAP@[.5:.95] ships (ties: the earlier)
    calibration_images: int  # val images the activation ranges are calibrated on
    per_channel: bool  # per-channel weight scales

    def __post_init__(self) -> None:
        if not self.recipes:
            raise VigilError("list at least one recipe", field="recipes")
        labels = [r.label for r in self.recipes]
        twice = next((label for label in labels if labels.count(label) > 1), None)
        if twice is not None:
            raise VigilError(
                f"recipe {twice} is listed twice", field="recipes", hint="list each recipe once"
            )
        if self.calibration_images < 1:
            raise VigilError("must be at least 1", field="calibration_images")


@dataclass(frozen=True)
class CoremlAbout:
    """What the .mlpackage says about itself (Xcode's model page, `MLModel.modelDescription`)."""

    author: str
    version: str  # the release version the package states
    description: str
    license: str

    def __post_init__(self) -> None:
        for name in ("author", "version", "description", "license"):
            if not getattr(self, name).strip():
                raise VigilError("must not be empty", field=name, hint="write what the app shows")


@dataclass(frozen=True)
class ExportParams:
    imgsz: int | None  # square input size; null = the checkpoint's trained size
    opset: int | None  # ONNX opset; null = ultralytics' choice
    simplify: bool  # onnxslim the exported graph
    conf: float  # confidence floor of the detections scored for mAP (as evaluate.conf)
    iou: float  # NMS IoU (as evaluate.iou)
    max_det: int  # detections per image (as evaluate.max_det)
    parity_conf: float  # deployed confidence at which engine outputs are compared box by box
    parity_iou: float  # IoU at which an engine's box is matched to PyTorch's (same class)
    int8: Int8Params
    coreml: bool  # build and validate the .mlpackage (FP16 and INT8 weights), NMS inside
    coreml_about: CoremlAbout  # author, version, description, license of the .mlpackage
    latency_threads: list[int]  # ONNX Runtime / torch threads timed
    latency_runs: int  # timed single-image detections per engine and thread count
    latency_warmup: int  # untimed forward passes first

    def __post_init__(self) -> None:
        if self.imgsz is not None and (self.imgsz <= 0 or self.imgsz % 32):
            raise VigilError(f"must be a positive multiple of 32, got {self.imgsz}", field="imgsz")
        for name in ("conf", "iou", "parity_conf", "parity_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise VigilError(f"must be in [0, 1], got {getattr(self, name)}", field=f"{name}")
        if not self.latency_threads or any(t < 1 for t in self.latency_threads):
            raise VigilError(
                f"need thread counts >= 1, got {self.latency_threads}", field="latency_threads"
            )
        if self.latency_runs < 1 or self.latency_warmup < 0:
            raise VigilError(
                "latency_runs >= 1 and latency_warmup >= 0 required", field="latency_runs"
            )
