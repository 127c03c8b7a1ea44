"""One image through a prompted teacher: boxes in the original image's pixels, one class id each.

Each family is prompted its own way and decoded by its processor's own post-processing, which
knows the family's geometry: OWLv2 pads the image to a square (boxes are scaled by the longer
side), Grounding DINO resizes it (boxes are scaled by width and height). What comes out is an
`ImageDetections`, the record every metric and label writer in vigil reads.

- OWLv2 scores every prompt separately: the post-processing's label is the prompt index.
- Grounding DINO reads one caption, `p1. p2. p3.`, and scores tokens. A prompt's score is the best
  score of its tokens, the tokens of each prompt taken from transformers' `build_label_maps` (the
  same phrase split its loss uses), so fine-tuning and labelling agree on which prompt is which.
Boxes are then kept per class by NMS (torchvision's `batched_nms`: an open-vocabulary model emits
near-duplicates) and capped at `max_det`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.detection.types import ImageDetections
from vigil.errors import VigilError
from vigil.teachers.loading import Family, Teacher
from vigil.teachers.prompts import Prompts

GROUNDING_DELIMITER = "."  # Grounding DINO's phrase separator: a prompt may not contain it


@dataclass(frozen=True)
class DetectSettings:
    """How detections are kept: the score floor, the per-class NMS IoU and the count per image."""

    floor: float  # keep scores above this (the pseudo-label confidence is applied later, on top)
    iou: float  # per-class NMS IoU
    max_det: int  # detections kept per image, best first

    def __post_init__(self) -> None:
        if not 0 <= self.floor < 1:
            raise VigilError("the score floor must be in [0, 1)", field="conf")
        if not 0 < self.iou <= 1:
            raise VigilError("the NMS IoU must be in (0, 1]", field="iou")
        if self.max_det < 1:
            raise VigilError("max_det must be at least 1", field="max_det")


def rgb_image(bgr: np.ndarray) -> Any:
    """A PIL RGB image of a decoded BGR array (what `iter_images` yields)."""
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))


def grounding_caption(prompts: Prompts) -> str:
    """`a. b. c.`: Grounding DINO's caption of the prompts (lower case, as it was trained)."""
    bad = [t for t in prompts.texts if GROUNDING_DELIMITER in t]
    if bad:
        raise VigilError(
            f"prompt {bad[0]!r} holds {GROUNDING_DELIMITER!r}, Grounding DINO's phrase separator",
            field="prompts",
            hint="write the prompt without full stops",
        )
    return "".join(f"{text.lower()}{GROUNDING_DELIMITER} " for text in prompts.texts).strip()


def _owlv2(
    teacher: Teacher, image: Any, prompts: Prompts, size: tuple[int, int], floor: float
) -> tuple[Any, Any, Any]:
    import torch

    inputs = teacher.processor(text=[list(prompts.texts)], images=[image], return_tensors="pt")
    with torch.no_grad():
        outputs = teacher.model(**inputs)
    result = teacher.processor.post_process_grounded_object_detection(
        outputs, threshold=floor, target_sizes=[size]
    )[0]
    return result["boxes"], result["scores"], result["labels"]


def _grounding_dino(
    teacher: Teacher, image: Any, prompts: Prompts, size: tuple[int, int], floor: float
) -> tuple[Any, Any, Any]:
    import torch
    from transformers.models.grounding_dino.modeling_grounding_dino import build_label_maps

    inputs = teacher.processor(images=[image], text=grounding_caption(prompts), return_tensors="pt")
    with torch.no_grad():
        outputs = teacher.model(**inputs)
    label_map = build_label_maps(outputs.logits, inputs["input_ids"])[0].to(outputs.logits.dtype)
    if label_map.shape[0] != len(prompts.texts):
        raise VigilError(
            f"the caption splits into {label_map.shape[0]} phrases, not the {len(prompts.texts)} prompts",
            field="prompts",
            hint="shorten the prompts (the caption holds at most config.max_text_len tokens)",
        )
    # every query's box, in pixels, by the processor (threshold below any score: nothing dropped there)
    boxes = teacher.processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=-1.0, text_threshold=1.0, target_sizes=[size]
    )[0]["boxes"]
    probs = torch.sigmoid(outputs.logits[0])  # (queries, tokens)
    per_prompt = (probs[:, None, :] * label_map[None, :, :]).amax(dim=-1)  # (queries, prompts)
    scores, labels = per_prompt.max(dim=-1)
    keep = scores > floor
    return boxes[keep], scores[keep], labels[keep]


def detect(
    teacher: Teacher, bgr: np.ndarray, prompts: Prompts, settings: DetectSettings
) -> ImageDetections:
    """The teacher's detections on one BGR image, in its pixels, with class ids from `prompts`."""
    import torch
    from torchvision.ops import batched_nms

    height, width = bgr.shape[:2]
    run = _owlv2 if teacher.family is Family.OWLV2 else _grounding_dino
    boxes, scores, labels = run(teacher, rgb_image(bgr), prompts, (height, width), settings.floor)
    boxes, scores = boxes.float().reshape(-1, 4).clone(), scores.float().reshape(-1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)  # in the image, as every vigil detector's boxes
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    classes = torch.as_tensor(prompts.class_ids, dtype=torch.int64)[labels.long().reshape(-1)]
    keep = batched_nms(boxes, scores, classes, settings.iou)[: settings.max_det]
    return ImageDetections(boxes[keep].numpy(), scores[keep].numpy(), classes[keep].numpy())
