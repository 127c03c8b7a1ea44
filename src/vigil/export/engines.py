"""The runnable engines behind `vigil predict` and the export stage: PyTorch and ONNX Runtime.

Each loads one file and exposes `forward` (the raw head output) and `set_threads`; everything before
and after the forward pass is `vigil.export.pipeline`. CoreML (macOS only) and TensorRT (CUDA only)
are not engines on this machine; see their format modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import VigilError

ENGINES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")


class TorchEngine:
    """An ultralytics checkpoint's fused PyTorch module on the CPU."""

    name = "torch"

    def __init__(self, path: Path) -> None:
        from vigil.models.yolo import configure_ultralytics

        configure_ultralytics()
        from ultralytics import YOLO

        if not Path(path).is_file():
            raise VigilError("model checkpoint not found", path=path, hint="run the stage that writes it")
        yolo = YOLO(str(path), task="detect")
        self.names: dict[int, str] = dict(yolo.names)
        imgsz = (getattr(yolo, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
        self.imgsz: int | None = imgsz if isinstance(imgsz, int) and not isinstance(imgsz, bool) else None
        self.module = yolo.model.fuse(verbose=False).float().eval()

    def forward(self, tensor: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(tensor))
        return (out[0] if isinstance(out, (tuple, list)) else out).numpy()

    def set_threads(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)


class OnnxEngine:
    """An ONNX file under ONNX Runtime's CPU provider; a thread count change rebuilds the session."""

    def __init__(self, path: Path, name: str = "onnx", threads: int = 0) -> None:
        if not Path(path).is_file():
            raise VigilError("ONNX file not found", path=path, hint="run the export stage first")
        self.name = name
        self.path = Path(path)
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0 = onnxruntime's default (all cores)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def forward(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: tensor})[0]

    @property
    def imgsz(self) -> int:
        return int(self.session.get_inputs()[0].shape[-1])


OPENERS: dict[str, Any] = {"torch": TorchEngine, "onnx": lambda path: OnnxEngine(path, "onnx"),
                           "onnx-int8": lambda path: OnnxEngine(path, "onnx-int8")}


def open_engine(kind: str, path: Path) -> Any:
    """The engine `kind` (one of ENGINES) over the file at `path`."""
    if kind not in OPENERS:
        raise VigilError(f"unknown engine {kind!r}", field="--engine", hint=f"choose from {', '.join(ENGINES)}")
    return OPENERS[kind](path)
