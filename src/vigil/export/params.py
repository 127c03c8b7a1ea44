"""Typed params of the `export` stage (`export:` in params.yaml); an unknown or mistyped key is an error naming it."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.errors import VigilError
from vigil.export.onnx_int8 import EXCLUDE_MODES, METHODS


@dataclass(frozen=True)
class Int8Params:
    method: str = "minmax"           # calibration: minmax | entropy | percentile
    calibration_images: int = 64     # val images the activation ranges are calibrated on
    exclude: str = "post"            # nodes kept float: none | post | post+last | head (see vigil.export.onnx_int8)
    per_channel: bool = True         # per-channel weight scales

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise VigilError(f"unknown method {self.method!r}", field="export.int8.method",
                             hint=f"choose from {', '.join(METHODS)}")
        if self.exclude not in EXCLUDE_MODES:
            raise VigilError(f"unknown exclusion {self.exclude!r}", field="export.int8.exclude",
                             hint=f"choose from {', '.join(EXCLUDE_MODES)}")
        if self.calibration_images < 1:
            raise VigilError("must be at least 1", field="export.int8.calibration_images")


@dataclass(frozen=True)
class ExportParams:
    imgsz: int | None = None         # square input size; null = the checkpoint's trained size
    opset: int | None = None         # ONNX opset; null = ultralytics' choice
    simplify: bool = True            # onnxslim the exported graph
    conf: float = 0.001              # confidence floor of the detections scored for mAP (as evaluate.conf)
    iou: float = 0.7                 # NMS IoU (as evaluate.iou)
    max_det: int = 100               # detections per image (as evaluate.max_det)
    parity_conf: float = 0.25        # deployed confidence at which engine outputs are compared box by box
    parity_iou: float = 0.5          # IoU at which an engine's box is matched to PyTorch's (same class)
    int8: Int8Params = field(default_factory=Int8Params)
    coreml: bool = True              # build and validate the .mlpackage (FP16 and INT8 weights)
    latency_threads: list[int] = field(default_factory=lambda: [1, 2])  # ONNX Runtime / torch threads timed
    latency_runs: int = 50           # timed single-image detections per engine and thread count
    latency_warmup: int = 5          # untimed forward passes first

    def __post_init__(self) -> None:
        if self.imgsz is not None and (self.imgsz <= 0 or self.imgsz % 32):
            raise VigilError(f"must be a positive multiple of 32, got {self.imgsz}", field="export.imgsz")
        for name in ("conf", "iou", "parity_conf", "parity_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise VigilError(f"must be in [0, 1], got {getattr(self, name)}", field=f"export.{name}")
        if not self.latency_threads or any(t < 1 for t in self.latency_threads):
            raise VigilError(f"need thread counts >= 1, got {self.latency_threads}", field="export.latency_threads")
        if self.latency_runs < 1 or self.latency_warmup < 0:
            raise VigilError("latency_runs >= 1 and latency_warmup >= 0 required", field="export.latency_runs")
