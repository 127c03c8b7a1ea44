"""One inference pipeline for every engine: letterbox → engine forward → NMS → boxes in image pixels.

Only the forward pass differs between engines (PyTorch, ONNX Runtime FP32 / INT8), so any difference
in the detections is the engine's. The letterbox is square and fixed (`imgsz`×`imgsz`, what a static
ONNX / CoreML input needs) for every engine, so the PyTorch reference sees exactly the same tensor.
Pre- and post-processing are ultralytics' own functions (LetterBox, non_max_suppression, scale_boxes).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from vigil.detection.types import ImageDetections
from vigil.models.inference import Inference


class Engine(Protocol):
    """A forward pass: (1, 3, imgsz, imgsz) float32 RGB in [0, 1] → raw head output (1, 4 + classes, anchors)."""

    name: str

    def forward(self, tensor: np.ndarray) -> np.ndarray: ...

    def set_threads(self, threads: int) -> None: ...


def preprocess(image: np.ndarray, imgsz: int) -> np.ndarray:
    """BGR uint8 image → (1, 3, imgsz, imgsz) float32 RGB in [0, 1], letterboxed like ultralytics' predictor."""
    from ultralytics.data.augment import LetterBox

    boxed: np.ndarray = LetterBox((imgsz, imgsz), auto=False, stride=32)(image=image)  # type: ignore[assignment]
    return np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def postprocess(
    raw: np.ndarray, image_shape: tuple[int, ...], settings: Inference
) -> ImageDetections:
    """NMS on the raw head output, then boxes scaled back to the original image."""
    import torch
    from ultralytics.utils import nms, ops

    kept = nms.non_max_suppression(
        torch.from_numpy(np.asarray(raw, dtype=np.float32)),
        settings.conf,
        settings.iou,
        max_det=settings.max_det,
    )[0]
    height, width = image_shape[:2]
    boxes = ops.scale_boxes((settings.imgsz, settings.imgsz), kept[:, :4].clone(), (height, width))
    return ImageDetections(
        np.asarray(boxes), kept[:, 4].numpy(), kept[:, 5].numpy().astype(np.int64)
    )


def detect(engine: Engine, image: np.ndarray, settings: Inference) -> ImageDetections:
    return postprocess(engine.forward(preprocess(image, settings.imgsz)), image.shape, settings)


def detect_all(
    engine: Engine, images: Iterable[np.ndarray], settings: Inference
) -> list[ImageDetections]:
    return [detect(engine, image, settings) for image in images]


def time_engine(
    engine: Engine,
    images: Sequence[np.ndarray],
    settings: Inference,
    *,
    runs: int,
    warmup: int,
    threads: int,
) -> dict[str, Any]:
    """Median / p95 wall time (ms) of single-image detection end to end, and of the forward pass alone."""
    engine.set_threads(threads)
    tensors = [preprocess(im, settings.imgsz) for im in images]
    for i in range(warmup):
        engine.forward(tensors[i % len(tensors)])
    total, forward = [], []
    for i in range(runs):
        image = images[i % len(images)]
        start = time.perf_counter()
        tensor = preprocess(image, settings.imgsz)
        mid = time.perf_counter()
        raw = engine.forward(tensor)
        end = time.perf_counter()
        postprocess(raw, image.shape, settings)
        total.append((time.perf_counter() - start) * 1000.0)
        forward.append((end - mid) * 1000.0)
    return {
        "median": round(statistics.median(total), 2),
        "p95": round(float(np.percentile(total, 95)), 2),
        "forward_median": round(statistics.median(forward), 2),
        "forward_p95": round(float(np.percentile(forward, 95)), 2),
        "runs": runs,
        "warmup": warmup,
    }
