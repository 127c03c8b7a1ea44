"""Boxes as (N, 4) float arrays: x1 y1 x2 y2 in image pixels, or YOLO's normalized cx cy w h.

One IoU and one pair of conversions for the whole project: metrics, matching, export parity and
the ground-truth readers all call these, so a box means the same thing at every border.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_boxes(rows: Any) -> np.ndarray:
    """Anything box-like (lists, tuples, arrays, empty) as an (N, 4) float64 array."""
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of x1 y1 x2 y2 boxes; an inverted box has area 0."""
    boxes = as_boxes(boxes)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of two sets of x1 y1 x2 y2 boxes (no +1 pixel convention, as pycocotools).

    A pair whose union is empty (two zero-area boxes) has IoU 0.
    """
    a, b = as_boxes(a), as_boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_ioa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over the area of each `a` box: how much of a detection lies in a region
    (COCO's overlap with a crowd region). A zero-area `a` box has 0."""
    a, b = as_boxes(a), as_boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = np.broadcast_to(box_area(a)[:, None], inter.shape)
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


def yolo_to_xyxy(yolo: Any, width: float, height: float) -> np.ndarray:
    """Normalized YOLO cx cy w h → x1 y1 x2 y2 in pixels of a width × height image."""
    cx, cy, w, h = as_boxes(yolo).T
    return np.stack(
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height],
        axis=1,
    ).reshape(-1, 4)


def xyxy_to_yolo(boxes: Any, width: float, height: float) -> np.ndarray:
    """x1 y1 x2 y2 in pixels of a width × height image → normalized YOLO cx cy w h (not clipped)."""
    x1, y1, x2, y2 = as_boxes(boxes).T
    return np.stack(
        [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height],
        axis=1,
    ).reshape(-1, 4)
