"""The `evaluate` stage's job: score each model on the test split and write metrics and DVC plots.

Per model: detections at a low confidence floor → pycocotools (mAP, recall, per class / size /
stratum / group); at the deployed confidence → count MAE and the confusion matrix; single-image
latency; and ultralytics' own `val` on the same images as a cross-check of the COCO numbers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import atomic_dir, write_json_atomic
from vigil.data.distance import DistanceParams, has_distances
from vigil.data.layout import read_classes
from vigil.detection.detections_file import DetectionsEntry, write_detections
from vigil.detection.split_lists import read_split_list
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.hardware import describe
from vigil.metrics.coco import evaluate_coco, rounded
from vigil.metrics.counts import count_error
from vigil.metrics.curves import (
    confusion_rows,
    mean_curve,
    pr_table,
    write_confusion,
    write_pr_curves,
)
from vigil.metrics.distance import ap_by_distance
from vigil.metrics.image_errors import ImageErrors, image_errors
from vigil.metrics.params import EvaluateParams
from vigil.metrics.truth import load_truth
from vigil.models.crosscheck import ultralytics_ap, ultralytics_val
from vigil.models.gallery import ERRORS, GALLERY, error_table, write_gallery
from vigil.models.inference import (
    Inference,
    iter_images,
    load_detector,
    measure_latency,
    predict_images,
    read_images,
    trained_imgsz,
)
from vigil.progress import progress


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    optional: bool = False

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """`name=path`, or `name?=path` for a model that may be absent (its block then says why)."""
        name, sep, path = text.partition("=")
        optional = name.endswith("?")
        name = name.rstrip("?")
        if not sep or not path or not name.replace("_", "").replace("-", "").isalnum():
            raise VigilError(f"--model {text!r} is not NAME=PATH", field="--model",
                             hint="e.g. --model teacher=models/teacher/best.pt (NAME?=PATH if it may be missing)")
        return cls(name, Path(path), optional)


@dataclass(frozen=True)
class ModelResult:
    block: dict[str, Any]                 # the model's block of metrics/evaluate.json
    pr50: np.ndarray                      # [classes, recall thresholds] precision at IoU .50 (-1: no true box)
    recall_axis: np.ndarray               # COCO's 101 recall thresholds
    confusion: list[dict[str, str]]       # {actual, predicted} rows
    detections: list[ImageDetections]     # at the scoring floor `conf`, one per image of the split


@dataclass(frozen=True)
class DetectionsDump:
    """Which model's raw detections `calibrate` gets, on val (to fit) and on test (to measure)."""

    model: str
    val_split: Path
    val_out: Path
    test_out: Path


def inference_settings(params: EvaluateParams, model: Any, path: Path) -> tuple[Inference, Inference]:
    """(scoring: every detection above `conf`, for mAP; deployed: above `count_conf`) at the evaluated size."""
    imgsz = params.imgsz or trained_imgsz(model, path)
    return (Inference(imgsz, params.conf, params.iou, params.max_det),
            Inference(imgsz, params.count_conf, params.iou, params.max_det))


def evaluate_model(spec: ModelSpec, truths: Sequence[ImageTruth], class_names: Sequence[str],
                   params: EvaluateParams, *, data: Path, work_dir: Path,
                   distance: DistanceParams | None = None) -> ModelResult:
    """One model on the split: metrics block, PR curves at IoU .50, confusion rows, and its detections.

    Images are decoded one at a time for the scoring pass; latency cycles over the first
    `latency_runs` of them, held in memory so decoding is not timed.
    """
    model = load_detector(spec.path, class_names)
    scoring, deployed = inference_settings(params, model, spec.path)
    images = [t.image for t in truths]
    stream = progress(iter_images(data, images), f"{spec.name}: predict", len(images))
    detections = predict_images(model, stream, scoring)
    report = evaluate_coco(truths, detections, class_names, size_buckets=params.area_ranges(),
                           strata=params.strata, groups=params.groups, max_det=params.max_det)
    counts = count_error(truths, detections, len(class_names), params.count_conf, params.confusion_iou)
    block = dict(report.metrics)
    if spec.name in params.robustness.models:
        block["robustness"] = robustness_table(model, truths, class_names, params, data=data, scoring=scoring,
                                               clean=block["map50_95"], name=spec.name)
    if distance is not None and has_distances([t.record for t in truths], distance.field):
        block["per_distance"] = ap_by_distance(truths, detections, class_names, distance,
                                               max_det=params.max_det)
    for name, mae in zip(class_names, counts.per_class, strict=True):
        block["per_class"][name]["count_mae"] = rounded(mae)
    block["imgsz"] = scoring.imgsz
    block["count_mae"] = rounded(counts.mae)
    block["count_mae_total"] = rounded(counts.total_mae)
    block["latency_ms"] = measure_latency(model, read_images(data, images[: params.latency_runs]), deployed,
                                          runs=params.latency_runs,
                                          warmup=params.latency_warmup, threads=params.latency_threads)
    if params.cross_check:  # ultralytics' numbers: its AP code on our detections, then its whole val
        theirs = ultralytics_val(spec.path, data, images, work_dir / spec.name, scoring, batch=params.val_batch)
        theirs["on_our_detections"] = ultralytics_ap(truths, detections)
        for key in ("map50", "map50_95"):
            theirs[f"{key}_minus_ours"] = None if block[key] is None else round(theirs[key] - block[key], 6)
        block["ultralytics_val"] = theirs
    rows = confusion_rows(truths, detections, class_names, conf=params.count_conf, iou=params.confusion_iou)
    return ModelResult(block, report.pr50, report.recall_thresholds, rows, detections)


def write_detections_file(path: Path, truths: Sequence[ImageTruth], detections: Sequence[ImageDetections],
                          **extra: Any) -> None:
    """The detections file `calibrate` reads (format: vigil.detection.detections_file), framed by the truths."""
    write_detections(path, [DetectionsEntry(t.image, t.width, t.height, d)
                            for t, d in zip(truths, detections, strict=True)], **extra)


def robustness_table(model: Any, truths: Sequence[ImageTruth], class_names: Sequence[str], params: EvaluateParams,
                     *, data: Path, scoring: Inference, clean: float | None, name: str) -> dict[str, Any]:
    """Test mAP under each corruption preset at each severity (seeded: the same corruption every run),
    and its share of the clean mAP@[.5:.95]."""
    from vigil.models.augment_presets import corrupter

    images = [t.image for t in truths]
    table: dict[str, Any] = {}
    for preset in params.robustness.presets:
        table[preset] = {}
        for severity, intensity in params.robustness.severities.items():
            corrupt = corrupter(preset, intensity, seed=0)
            arrays = (corrupt(a) for a in iter_images(data, images))
            stream = progress(arrays, f"{name}: {preset} {severity}", len(images))
            scored = evaluate_coco(truths, predict_images(model, stream, scoring), class_names,
                                   max_det=params.max_det).metrics
            table[preset][severity] = {
                "intensity": intensity,
                "map50_95": scored["map50_95"],
                "map50": scored["map50"],
                "of_clean": None if not clean or scored["map50_95"] is None
                else rounded(scored["map50_95"] / clean),
            }
    return table


def dump_detections(dump: DetectionsDump, spec: ModelSpec, test_truths: Sequence[ImageTruth],
                    test_detections: Sequence[ImageDetections], class_names: Sequence[str],
                    params: EvaluateParams, data: Path) -> None:
    """Test detections from the scoring pass; val detections from one more pass, same settings."""
    model = load_detector(spec.path, class_names)
    scoring, _ = inference_settings(params, model, spec.path)
    extra = {"model": spec.name, "imgsz": scoring.imgsz, "conf": params.conf, "iou": params.iou,
             "max_det": params.max_det}
    val_images = read_split_list(dump.val_split)
    val_truths = load_truth(data, val_images)
    stream = progress(iter_images(data, val_images), f"{spec.name}: predict val", len(val_images))
    write_detections_file(dump.val_out, val_truths, predict_images(model, stream, scoring), split="val", **extra)
    write_detections_file(dump.test_out, test_truths, test_detections, split="test", **extra)


def run_evaluate(data: Path, split_list: Path, models: Sequence[ModelSpec], *, metrics: Path, plots: Path,
                 params: EvaluateParams, work_dir: Path, dump: DetectionsDump | None = None,
                 distance: DistanceParams | None = None) -> dict[str, Any]:
    """Evaluate `models` on the images of `split_list`; write `metrics` (JSON), the `plots` folder (whole:
    PR curves, confusion matrices, the error gallery and its per-image counts) and, with `dump`, one
    model's detections on val and test for `calibrate`. With `distance`, each model's block has mAP per
    distance bin (`per_distance`) when the manifest records distances."""
    if not models:
        raise VigilError("no model to evaluate", field="--model", hint="give --model NAME=PATH at least once")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise VigilError(f"model names repeat: {names}", field="--model")
    if dump is not None and dump.model not in names:
        raise VigilError(f"--detections-of {dump.model!r} is not one of the models {names}", field="--detections-of")
    for name in params.gallery:
        if name not in names:
            raise VigilError(f"{name!r} is not one of the evaluated models {names}", field=f"evaluate.gallery.{name}",
                             hint="name a model given by --model (params.yaml, section evaluate)")
    images = read_split_list(split_list)
    if not images:
        raise VigilError("the split list is empty", path=split_list)
    class_names = read_classes(data)
    truths = load_truth(data, images)
    result: dict[str, Any] = {"hardware": describe()}  # the machine every latency_ms was measured on
    done: dict[str, ModelResult] = {}
    for spec in models:
        if spec.optional and not spec.path.is_file():
            if dump is not None and dump.model == spec.name:
                raise VigilError("the model whose detections calibrate needs is missing", path=spec.path,
                                 field="--detections-of")
            result[spec.name] = {"skipped": f"{spec.path.as_posix()} not found (optional)"}
            continue
        start = time.perf_counter()
        done[spec.name] = evaluate_model(spec, truths, class_names, params, data=data, work_dir=work_dir,
                                         distance=distance)
        done[spec.name].block["seconds"] = round(time.perf_counter() - start, 1)
        if dump is not None and dump.model == spec.name:
            dump_detections(dump, spec, truths, done[spec.name].detections, class_names, params, data)
        result[spec.name] = done[spec.name].block
    with atomic_dir(plots) as tmp:
        if done:
            axis = next(iter(done.values())).recall_axis
            write_pr_curves(tmp / "pr", axis, class_names, {name: r.pr50 for name, r in done.items()})
            means = {name: mean_curve(r.pr50) for name, r in done.items()}
            (tmp / "pr_mean.csv").write_text(pr_table(axis, means), encoding="utf-8")
        for name, r in done.items():
            write_confusion(tmp / name / "confusion.json", r.confusion)
        errors = {name: [image_errors(t, d, conf=params.count_conf, iou=params.confusion_iou)
                         for t, d in zip(truths, r.detections, strict=True)] for name, r in done.items()}
        index = write_gallery(tmp / GALLERY, data, errors, params.gallery, class_names)
        write_json_atomic(tmp / ERRORS, error_table(errors, index, conf=params.count_conf, iou=params.confusion_iou))
    for name, found in errors.items():
        done[name].block["deployed"] = deployed_rates(found, params)
    write_json_atomic(metrics, result)
    return result


def deployed_rates(errors: Sequence[ImageErrors], params: EvaluateParams) -> dict[str, Any]:
    """Recall and precision at the deployed confidence (`count_conf`, IoU `confusion_iou`): what "finds
    98 % of the bottles" means to a team, beside COCO's AR@100 over every confidence."""
    tp = sum(e.tp for e in errors)
    fp = sum(e.fp for e in errors)
    missed = sum(e.missed for e in errors)
    return {"conf": params.count_conf, "iou": params.confusion_iou, "tp": tp, "fp": fp, "missed": missed,
            "recall": rounded(tp / (tp + missed)) if tp + missed else None,
            "precision": rounded(tp / (tp + fp)) if tp + fp else None}


def summary_line(name: str, block: dict[str, Any]) -> str:
    if "skipped" in block:
        return f"{name}: skipped ({block['skipped']})"

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    line = (f"{name}: mAP50-95 {f(block['map50_95'])}, mAP50 {f(block['map50'])}, AR@100 {f(block['recall'])}, "
            f"count MAE {f(block['count_mae'])}, latency {block['latency_ms']['median']:.1f} ms "
            f"(p95 {block['latency_ms']['p95']:.1f})")
    if "ultralytics_val" in block:
        val = block["ultralytics_val"]
        line += f"; ultralytics val mAP50 {f(val['map50'])}, mAP50-95 {f(val['map50_95'])}"
    return line
