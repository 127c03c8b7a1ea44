"""How good a prompted teacher is on val, in the same COCO numbers as every other model.

The teacher's detections (score floor `evaluate.conf`, at most `evaluate.max_det` per image) are
scored against the dataset's truth by `vigil.metrics.coco.evaluate_coco`, the one COCOeval wrapper
in vigil, so the gate compares a prompted teacher and a YOLO teacher on equal terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigil.data.layout import read_classes
from vigil.detection.types import ImageDetections
from vigil.metrics.coco import evaluate_coco
from vigil.metrics.truth import load_truth
from vigil.models.inference import iter_images
from vigil.teachers.detect import DetectSettings, detect
from vigil.teachers.loading import Teacher
from vigil.teachers.prompts import Prompts


def score_teacher(
    teacher: Teacher, data: Path, images: Sequence[str], prompts: Prompts, settings: DetectSettings
) -> dict[str, Any]:
    """COCO metrics (map50_95, map50, per class …) of the teacher on `images` of the dataset at `data`."""
    data = Path(data)
    truths = load_truth(data, images)
    found: list[ImageDetections] = [
        detect(teacher, array, prompts, settings) for array in iter_images(data, images)
    ]
    return evaluate_coco(truths, found, read_classes(data), max_det=settings.max_det).metrics
