"""`vigil predict`: one interface over every runnable engine, with the calibration mapping applied.

Every engine goes through the same letterbox and NMS (`vigil.export.pipeline`); the raw scores are
then mapped by `models/calibration.json` (`vigil.release.mapping`) and the boxes kept are those the
mapping keeps at its operating threshold — so one image gives the same calibrated boxes whatever
the engine, up to the engine's numerical difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import VigilError
from vigil.export.engines import ENGINES, open_engine
from vigil.export.pipeline import detect
from vigil.models.inference import Inference
from vigil.release.mapping import calibrate_detections, keep_mask, load_mapping

DEFAULT_MODELS: dict[str, Path] = {"torch": Path("models/student/best.pt"), "onnx": Path("models/export/model.onnx"),
                                   "onnx-int8": Path("models/export/model_int8.onnx")}


def read_image(path: Path) -> np.ndarray:
    """BGR array of an image file (any path, spaces and non-ASCII allowed)."""
    import cv2

    array = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR) if path.is_file() else None
    if array is None:
        raise VigilError("image missing or not decodable", path=path)
    return array


def predict_files(images: Sequence[Path], *, engine: str, model: Path | None = None, calibration: Path | None = None,
                  imgsz: int | None = None, conf: float = 0.25, iou: float = 0.7, max_det: int = 100
                  ) -> list[dict[str, Any]]:
    """Per image: its detections `{xyxy, score, raw_score, class}` (score calibrated when a mapping is given)."""
    if engine not in ENGINES:
        raise VigilError(f"unknown engine {engine!r}", field="--engine", hint=f"choose from {', '.join(ENGINES)}")
    runner = open_engine(engine, model or DEFAULT_MODELS[engine])
    size = imgsz or runner.imgsz
    if size is None:
        raise VigilError("the model does not record its input size", field="--imgsz", hint="give --imgsz")
    mapping = load_mapping(calibration) if calibration is not None else None
    settings = Inference(size, conf, iou, max_det)
    out = []
    for path in images:
        dets = detect(runner, read_image(Path(path)), settings)
        scores = dets.scores
        keep = np.ones(len(scores), dtype=bool)
        if mapping is not None:
            keep = keep_mask(mapping, dets.classes, dets.scores)
            scores = calibrate_detections(mapping, dets.classes, dets.scores)
        out.append({"image": str(path), "engine": engine, "calibrated": mapping is not None,
                    "detections": [{"xyxy": [round(float(v), 2) for v in box], "score": round(float(s), 5),
                                    "raw_score": round(float(r), 5), "class": int(c)}
                                   for box, s, r, c, k in zip(dets.boxes, scores, dets.scores, dets.classes, keep)
                                   if k]})
    return out
