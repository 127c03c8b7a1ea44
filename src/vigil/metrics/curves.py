"""Plots for DVC: precision-recall curves per class and a confusion matrix with a background class.

PR curves come straight from COCOeval (precision at IoU .50 over its 101 recall thresholds), one
CSV per class with a column per model, so `dvc plots show` draws the models of one class in one
chart. The confusion matrix matches detections above the deployed confidence to true boxes,
class-agnostically, greedily by IoU (each box used once): a matched pair is (true class, predicted
class), a missed true box is (class, background), a detection on nothing is (background, class).
It is written as `{actual, predicted}` rows, the shape of DVC's `confusion` template.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from vigil.atomic import atomic_dir, write_json_atomic
from vigil.detection.boxes import box_iou
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.matching import drop_ignored

BACKGROUND = "background"


def match_by_iou(ious: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Greedy one-to-one (true, detection) pairs with IoU >= threshold, highest IoU first (ties: lower index)."""
    pairs = np.argwhere(ious >= threshold)
    if not len(pairs):
        return []
    values = ious[pairs[:, 0], pairs[:, 1]]
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -values))
    used_t: set[int] = set()
    used_d: set[int] = set()
    out = []
    for t, d in pairs[order]:
        if t not in used_t and d not in used_d:
            used_t.add(int(t))
            used_d.add(int(d))
            out.append((int(t), int(d)))
    return sorted(out)


def confusion_rows(
    truths: Sequence[ImageTruth],
    detections: Sequence[ImageDetections],
    class_names: Sequence[str],
    *,
    conf: float,
    iou: float,
) -> list[dict[str, str]]:
    """One `{actual, predicted}` row per matched pair, missed true box and unmatched detection, image by image."""
    rows = []
    for truth, dets in zip(truths, detections, strict=True):
        dets = drop_ignored(truth, dets.above(conf), iou)  # in an ignore region: not a detection
        known = (dets.classes >= 0) & (dets.classes < len(class_names))
        dets = ImageDetections(dets.boxes[known], dets.scores[known], dets.classes[known])
        pairs = match_by_iou(box_iou(truth.boxes, dets.boxes), iou)
        matched_t = {t for t, _ in pairs}
        matched_d = {d for _, d in pairs}
        rows += [
            {"actual": class_names[truth.classes[t]], "predicted": class_names[dets.classes[d]]}
            for t, d in pairs
        ]
        rows += [
            {"actual": class_names[c], "predicted": BACKGROUND}
            for t, c in enumerate(truth.classes)
            if t not in matched_t
        ]
        rows += [
            {"actual": BACKGROUND, "predicted": class_names[c]}
            for d, c in enumerate(dets.classes)
            if d not in matched_d
        ]
    return rows


def confusion_counts(
    rows: Sequence[Mapping[str, str]], class_names: Sequence[str]
) -> dict[str, dict[str, int]]:
    """actual → predicted → count, over the classes and background (zeros included)."""
    labels = [*class_names, BACKGROUND]
    matrix = {a: {p: 0 for p in labels} for a in labels}
    for row in rows:
        matrix[row["actual"]][row["predicted"]] += 1
    return matrix


def pr_table(recall_thresholds: np.ndarray, curves: Mapping[str, np.ndarray]) -> str:
    """CSV: `recall` then one precision column per model (model name → precision per recall threshold)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["recall", *curves])
    for r, rec in enumerate(recall_thresholds):
        writer.writerow([f"{rec:.2f}", *(f"{curve[r]:.6f}" for curve in curves.values())])
    return buffer.getvalue()


def mean_curve(pr50: np.ndarray) -> np.ndarray:
    """Mean precision over the classes with a true box, per recall threshold: its mean is mAP50."""
    valid = pr50[(pr50 > -1).all(axis=1)]
    return valid.mean(axis=0) if len(valid) else np.zeros(pr50.shape[1])


def curve_file_name(class_name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_ ." else "_" for c in class_name) + ".csv"


def write_pr_curves(
    folder: Path,
    recall_thresholds: np.ndarray,
    class_names: Sequence[str],
    pr50: Mapping[str, np.ndarray],
) -> list[str]:
    """`folder/<class>.csv` for each class with a true box, one precision column per model.

    `pr50`: model → [classes, recall thresholds] precision at IoU .50 (-1 where a class has no true
    box: no file). Replaces `folder` whole; returns the file names written.
    """
    written = []
    with atomic_dir(folder) as tmp:
        for k, name in enumerate(class_names):
            curves = {model: p[k] for model, p in pr50.items()}
            if any((c < 0).all() for c in curves.values()):
                continue  # no true box of this class: COCO has no curve
            (tmp / curve_file_name(name)).write_text(
                pr_table(recall_thresholds, curves), encoding="utf-8"
            )
            written.append(curve_file_name(name))
    return written


def write_confusion(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    write_json_atomic(path, list(rows))
