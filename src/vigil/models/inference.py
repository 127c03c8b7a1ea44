"""Run an ultralytics YOLO checkpoint the way it will be deployed: one image at a time on this CPU.

`Inference` is the one set of prediction settings (size, confidence floor, NMS IoU, max detections)
that evaluate, distill and the export pipeline share. `predict_images` gives every detection above
a low floor (what mAP needs); `measure_latency` times single-image predictions at the deployed
confidence after a warm-up, end to end (letterbox, forward pass, NMS, scaling back), on images
already in memory, so disk and JPEG decoding are not counted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.layout import resolve_inside
from vigil.detection.types import ImageDetections
from vigil.errors import VigilError


@dataclass(frozen=True)
class Inference:
    """How to predict: square input size, confidence floor, NMS IoU, detections kept per image."""

    imgsz: int
    conf: float
    iou: float
    max_det: int

    def kwargs(self) -> dict[str, Any]:
        """The same settings as `YOLO.predict` / `YOLO.val` keyword arguments, on the CPU."""
        return {"imgsz": self.imgsz, "conf": self.conf, "iou": self.iou, "max_det": self.max_det,
                "device": "cpu", "verbose": False}


def load_yolo(path: Path, hint: str = "run the stage that writes it") -> Any:
    """`YOLO(path, task="detect")` of a local checkpoint; a missing or unloadable file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise VigilError("model checkpoint not found", path=path, hint=hint)
    from ultralytics import YOLO

    try:
        return YOLO(str(path), task="detect")
    except Exception as exc:  # torch / ultralytics raise many kinds on a bad file
        raise VigilError(f"not a loadable ultralytics checkpoint: {exc}", path=path) from None


def load_detector(path: Path, class_names: Sequence[str]) -> Any:
    """The YOLO model of a local checkpoint; refused unless it detects exactly the dataset's classes."""
    model = load_yolo(path, hint="run the stage that writes it, or mark the model optional (name?=path)")
    names = [model.names[i] for i in sorted(model.names)]
    if names != list(class_names):
        raise VigilError(f"the model detects {names}, the dataset has {list(class_names)}", path=path,
                         hint="evaluate a model trained on this dataset's classes.txt")
    return model


def trained_imgsz(model: Any, path: Path) -> int:
    """The image size a checkpoint was trained at (its `train_args`), the size to evaluate it at."""
    imgsz = (getattr(model, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
    if not isinstance(imgsz, int) or isinstance(imgsz, bool) or imgsz <= 0:
        raise VigilError("the checkpoint does not record the image size it was trained at", path=path,
                         field="evaluate.imgsz", hint="set evaluate.imgsz in params.yaml")
    return imgsz


def iter_images(root: Path, images: Iterable[str]) -> Iterator[np.ndarray]:
    """BGR arrays of `images` (paths relative to `root`), decoded one at a time; spaces and non-ASCII allowed."""
    import cv2

    for rel in images:
        path = resolve_inside(Path(root), rel)
        array = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR) if path.is_file() else None
        if array is None:
            raise VigilError("image missing or not decodable", path=path, hint="run `vigil data check` on the dataset")
        yield array


def read_images(root: Path, images: Sequence[str]) -> list[np.ndarray]:
    """`iter_images` held in memory (latency runs and the export checks reuse the arrays)."""
    return list(iter_images(root, images))


def _detections(result: Any) -> ImageDetections:
    boxes = result.boxes
    return ImageDetections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy().astype(int))


def predict_images(model: Any, arrays: Iterable[np.ndarray], settings: Inference) -> list[ImageDetections]:
    """Detections per image (pixels of the original image), one image per call."""
    return [_detections(model.predict(array, **settings.kwargs())[0]) for array in arrays]


def measure_latency(model: Any, arrays: Sequence[np.ndarray], settings: Inference, *, runs: int, warmup: int,
                    threads: int) -> dict[str, Any]:
    """Median and p95 wall time (ms) of `runs` single-image predictions cycling over `arrays`, after `warmup`.

    Timed with `threads` torch threads (ultralytics resets the count when it sets a predictor up, so it
    is set after the first prediction), restored afterwards.
    """
    import torch

    if not arrays:
        raise VigilError("no images to time")
    model.predict(arrays[0], **settings.kwargs())  # sets the predictor up (and torch's thread count)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for i in range(warmup):
            model.predict(arrays[i % len(arrays)], **settings.kwargs())
        wall, forward = [], []
        for i in range(runs):
            start = time.perf_counter()
            result = model.predict(arrays[i % len(arrays)], **settings.kwargs())[0]
            wall.append((time.perf_counter() - start) * 1000.0)
            forward.append(float(result.speed.get("inference", float("nan"))))
    finally:
        torch.set_num_threads(previous)
    return {"median": round(statistics.median(wall), 2), "p95": round(float(np.percentile(wall, 95)), 2),
            "forward_median": round(statistics.median(forward), 2), "runs": runs, "warmup": warmup,
            "threads": threads, "imgsz": settings.imgsz, "conf": settings.conf}
