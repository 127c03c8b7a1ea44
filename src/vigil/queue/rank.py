"""Run the deployed detectors over the pool and score every image (`vigil.queue.scoring`).

The student is the release subject, so its detections are what the labeller sees and what
`low_confidence` judges, calibrated by `models/calibration.json` when given (a calibrated score is
a probability: its doubt is measurable). `disagreement` also runs the teacher. The deployed boxes
are those the calibration keeps (its operating threshold), else those at or above
`calibrate.operating_threshold`; inference uses evaluate's NMS IoU and detections per image, at
the size each checkpoint was trained at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.detection.types import ImageDetections
from vigil.export.embedded_calibration import calibrate_image
from vigil.models.inference import (
    Inference,
    iter_images,
    load_detector,
    predict_images,
    trained_imgsz,
)
from vigil.queue.params import QueueParams
from vigil.queue.scoring import disagreement_score, low_confidence_score, random_scores, rank


@dataclass(frozen=True)
class Guesses:
    """The student's detections of one image: raw, as shown (calibrated when a mapping is given), kept."""

    raw: ImageDetections
    shown: ImageDetections
    deployed: np.ndarray  # bool per detection: kept at the operating threshold


@dataclass(frozen=True)
class Ranking:
    """Pool images from the first to label down, with their scores and the student's guesses."""

    images: list[str]
    scores: list[float]
    guesses: dict[str, Guesses]  # at least the queued images


@dataclass(frozen=True)
class Models:
    student: Path
    teacher: Path | None
    mapping: dict[str, Any] | None  # the student's calibration, None = raw scores
    threshold: float  # raw deployed threshold (calibrate.operating_threshold) when no mapping
    nms_iou: float
    max_det: int


def _run(
    path: Path, classes: list[str], data: Path, images: list[str], conf: float, models: Models
) -> list[ImageDetections]:
    model = load_detector(path, classes)
    settings = Inference(trained_imgsz(model, path), conf, models.nms_iou, models.max_det)
    return predict_images(model, iter_images(data, images), settings)


def guesses(dets: ImageDetections, size: tuple[int, int], models: Models) -> Guesses:
    """What the student says about one image, in the deployed form."""
    if models.mapping is None:
        return Guesses(dets, dets, dets.scores >= models.threshold)
    shown, keep = calibrate_image(models.mapping, dets, width=size[0], height=size[1])
    return Guesses(dets, shown, np.asarray(keep, dtype=bool))


def _deployed(g: Guesses) -> ImageDetections:
    k = g.deployed
    return ImageDetections(g.raw.boxes[k], g.raw.scores[k], g.raw.classes[k])


def rank_pool(
    data: Path,
    images: list[str],
    sizes: dict[str, tuple[int, int]],
    classes: list[str],
    params: QueueParams,
    models: Models,
    seed: int,
) -> Ranking:
    """Score every pool image by `params.method` and order them; guesses for (at least) the top N."""
    if params.method == "random":
        scores = random_scores(images, seed)
        order = rank(images, scores)
        top = [images[i] for i in order[: params.top]]
        dets = _run(models.student, classes, data, top, params.conf, models)
        found = {
            image: guesses(d, sizes[image], models) for image, d in zip(top, dets, strict=True)
        }
        return Ranking([images[i] for i in order], [scores[i] for i in order], found)
    student = _run(models.student, classes, data, images, params.conf, models)
    found = {
        image: guesses(d, sizes[image], models) for image, d in zip(images, student, strict=True)
    }
    if params.method == "low_confidence":
        centre = 0.5 if models.mapping is not None else models.threshold
        scores = [low_confidence_score(found[image].shown.scores, centre) for image in images]
    else:
        if models.teacher is None:
            raise ValueError("disagreement needs the teacher")  # the command checks it first
        teacher = _run(models.teacher, classes, data, images, params.conf, models)
        scores = [
            disagreement_score(t.above(models.threshold), _deployed(found[image]), params.iou)
            for image, t in zip(images, teacher, strict=True)
        ]
    order = rank(images, scores)
    return Ranking([images[i] for i in order], [scores[i] for i in order], found)
