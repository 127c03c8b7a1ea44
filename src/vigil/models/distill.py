"""Stage `distill`: a small student trained from the teacher, and a no-distillation control beside it.

Three steps, all on the teacher-independent split lists:
1. the teacher labels the unlabelled pool (`pseudo_labels`, boxes at or above `pseudo_conf`); the
   pool's withheld true boxes measure those labels (precision / recall at `match_iou`, mAP50 from
   the teacher's low-confidence detections) — they never reach training;
2. the student trains on train + pseudo-labelled pool with ultralytics' native distillation
   (`distill_model=` the teacher, `dis` weight), through `train_detector` (resume included);
3. the control trains the same yaml, init, seed, epochs and train list with no teacher in any form:
   no `distill_model`, no pseudo-labels, no pool image (`control_job`), so the distillation gain is
   measured, not assumed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import write_json_atomic, write_text_atomic
from vigil.data.layout import Box, read_classes
from vigil.detection.split_lists import read_split_list
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.metrics.coco import evaluate_coco
from vigil.metrics.matching import match_image
from vigil.metrics.truth import read_truth as read_label_truth
from vigil.models.dataset import subset
from vigil.models.params import TrainParams
from vigil.params import build, load_seed, load_yaml

INITS = ("weights", "pruned_teacher")  # student init: `weights` (or random), or the teacher pruned to `model`
DETECTION_FLOOR = 0.001                # the teacher's pool detections are kept down to here for mAP50


DISTILL_KEYS = ("model", "init", "dis", "pseudo_conf", "pseudo_iou", "match_iou", "use_pool", "overrides")


@dataclass(frozen=True)
class DistillParams(TrainParams):
    """How student and control train: the `train:` section, with `distill.overrides` applied, plus the
    distillation keys. params.yaml's `distill:` holds only what differs from the teacher, and the stage
    depends on both sections, so `dvc params diff` still shows everything a student was trained with."""

    init: str                # weights: both start from the init weights; pruned_teacher: see `student_inits`
    dis: float               # ultralytics' distillation loss weight (feature mimicking at the head inputs)
    pseudo_conf: float       # teacher boxes at or above this confidence become pool labels
    pseudo_iou: float        # NMS IoU of the teacher's pool predictions
    match_iou: float         # IoU at which a pseudo-label counts as a true box (precision / recall)
    use_pool: bool           # add the pseudo-labelled pool to the student's train list

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init not in INITS:
            raise VigilError(f"init {self.init!r} is not one of {', '.join(INITS)}", field="init")
        for name in ("pseudo_conf", "pseudo_iou", "match_iou"):
            if not 0 < getattr(self, name) <= 1:
                raise VigilError(f"{name} must be in (0, 1]", field=name)
        if self.dis < 0:
            raise VigilError("dis must be >= 0", field="dis")

    def train_params(self) -> TrainParams:
        """The plain training params (what student and control share; no distillation key in them)."""
        names = {f.name for f in dataclasses.fields(TrainParams)}
        return TrainParams(**{k: v for k, v in vars(self).items() if k in names})


def _overlay(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in key by key (nested mappings merged, everything else replaced)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _overlay(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


def resolve_distill_section(train: Any, distill: Any) -> dict[str, Any]:
    """The full DistillParams mapping: `train:` overlaid by `distill.overrides`, plus the distill keys."""
    for name, section in (("train", train), ("distill", distill)):
        if not isinstance(section, dict):
            raise VigilError(f"expected a mapping, got {type(section).__name__}", field=name)
    unknown = sorted(set(distill) - set(DISTILL_KEYS), key=str)
    if unknown:
        hint = "train keys that differ for the student go under distill.overrides" \
            if unknown[0] in train else f"known keys here: {', '.join(DISTILL_KEYS)}"
        raise VigilError(f"unknown key 'distill.{unknown[0]}'", field=f"distill.{unknown[0]}", hint=hint)
    missing = [k for k in DISTILL_KEYS if k not in distill]
    if missing:
        raise VigilError(f"missing key 'distill.{missing[0]}'", field=f"distill.{missing[0]}",
                         hint="params.yaml holds every value; add the key")
    overrides = distill["overrides"] or {}
    if not isinstance(overrides, dict):
        raise VigilError("expected a mapping of train keys", field="distill.overrides")
    bad = sorted((k for k in overrides if k not in train or k == "model"), key=str)
    if bad:
        raise VigilError(f"{bad[0]!r} is not a train key the student may override", field=f"distill.overrides.{bad[0]}",
                         hint="the student's architecture is distill.model")
    return {**_overlay(train, overrides), **{k: distill[k] for k in DISTILL_KEYS if k != "overrides"}}


def load_distill_params(path: Path) -> tuple[DistillParams, int]:
    """The student's params (`train:` + `distill.overrides` + the distill keys), checked, and its seed."""
    data = load_yaml(path)
    for name in ("train", "distill"):
        if name not in data:
            raise VigilError(f"missing section {name!r}", path=path, field=name)
    try:
        params = build(DistillParams, resolve_distill_section(data["train"], data["distill"]), "distill")
    except VigilError as exc:
        raise VigilError(exc.message, path=path, field=exc.field, hint=exc.hint) from None
    return params, params.seed if params.seed is not None else load_seed(path)


@dataclass(frozen=True)
class Inits:
    """Where student and control start, and what pruning did (empty when nothing was pruned)."""

    student: str | None
    control: str | None
    pruning: Mapping[str, Any] = field(default_factory=dict)


def student_inits(params: DistillParams, teacher: Path, work: Path, weights: Path | None) -> Inits:
    """The student's and the control's init weights.

    init: weights — both start from `weights` (null = random).
    init: pruned_teacher — the student starts from the fine-tuned teacher pruned to `model`'s shape;
    the control from `weights` (a checkpoint the teacher never touched, e.g. the pretrained one)
    pruned to the same shape by the same rule, so it has the student's exact architecture and no
    teacher knowledge (random init of that shape when `weights` is null).
    """
    if params.init == "weights":
        return Inits(str(weights) if weights else None, str(weights) if weights else None)
    from vigil.models.prune import prune_checkpoint

    work = Path(work)
    student = prune_checkpoint(Path(teacher), params.model, work / "student_init.pt", params.imgsz)
    pruning: dict[str, Any] = {"student": {"source": "teacher", **student.as_dict()}}
    control: str | None = None
    if weights is not None:
        report = prune_checkpoint(Path(weights), params.model, work / "control_init.pt", params.imgsz)
        pruning["control"] = {"source": str(weights), **report.as_dict()}
        control = str(work / "control_init.pt")
    return Inits(str(work / "student_init.pt"), control, pruning)


# --- 1. pseudo-labels ---------------------------------------------------------------------------------


def pseudo_label_text(dets: ImageDetections, width: int, height: int, conf: float) -> str:
    """YOLO label text of the detections at or above `conf` (clipped to the image); "" = a background image."""
    lines = []
    for (x1, y1, x2, y2), score, cls in zip(dets.boxes, dets.scores, dets.classes, strict=True):
        x1, x2 = float(np.clip(x1, 0, width)), float(np.clip(x2, 0, width))
        y1, y2 = float(np.clip(y1, 0, height)), float(np.clip(y2, 0, height))
        if score < conf or x2 <= x1 or y2 <= y1:
            continue
        box = Box(int(cls), (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)
        lines.append(box.to_line() + "\n")
    return "".join(lines)


def truth_path(pool_truth: Path, image_rel: str) -> Path:
    """images/pool/000001.jpg → <pool_truth>/pool/000001.txt."""
    rel = Path(image_rel)
    if rel.parts[0] != "images":
        raise VigilError(f"{image_rel!r} is not under images/", field="pool")
    return Path(pool_truth).joinpath(*rel.parts[1:]).with_suffix(".txt")


def read_truth(pool_truth: Path, image_rel: str, width: int, height: int) -> ImageTruth:
    """The withheld true boxes of one pool image, in pixels; a missing file = no boxes."""
    return read_label_truth(truth_path(pool_truth, image_rel), image_rel, width, height)


def label_quality(dets: Sequence[ImageDetections], truths: Sequence[ImageTruth], conf: float, iou: float,
                  class_names: Sequence[str]) -> dict[str, Any]:
    """Pseudo-labels (detections >= conf) against the true boxes: count, precision, recall; mAP50 of all detections."""
    correct = kept = 0
    for det, truth in zip(dets, truths, strict=True):
        keep = det.scores >= conf
        matched = match_image(truth, det.above(conf), iou)
        correct += int(matched.sum())
        kept += int(keep.sum())
    total = sum(len(t.classes) for t in truths)
    map50 = evaluate_coco(truths, dets, class_names).metrics["map50"] if total else None
    return {"images": len(truths), "labels": kept, "true_boxes": total, "correct": correct,
            "precision": round(correct / kept, 5) if kept else 0.0,
            "recall": round(correct / total, 5) if total else 0.0,
            "map50": map50, "conf": conf, "iou": iou}


def label_pool(teacher: Path, data: Path, pool: Sequence[str], pool_truth: Path,
               params: DistillParams) -> tuple[dict[str, str], dict[str, Any]]:
    """The teacher's pseudo-labels for `pool` (image path → YOLO text) and their quality against the truth."""
    from vigil.models.inference import Inference, iter_images, load_detector, predict_images, trained_imgsz

    names = read_classes(data)
    model = load_detector(teacher, names)
    settings = Inference(imgsz=trained_imgsz(model, teacher), conf=min(DETECTION_FLOOR, params.pseudo_conf),
                         iou=params.pseudo_iou, max_det=100)
    labels: dict[str, str] = {}
    dets: list[ImageDetections] = []
    truths: list[ImageTruth] = []
    for rel, array in zip(pool, iter_images(data, pool), strict=True):
        height, width = array.shape[:2]
        det = predict_images(model, [array], settings)[0]
        labels[rel] = pseudo_label_text(det, width, height, params.pseudo_conf)
        dets.append(det)
        truths.append(read_truth(pool_truth, rel, width, height))
    return labels, label_quality(dets, truths, params.pseudo_conf, params.match_iou, names)


# --- 2. and 3. student and control ---------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One `train_detector` call: its params, split folder, extra ultralytics args and view-only labels."""

    name: str
    params: TrainParams
    init: str | None                 # the init weights (a checkpoint path; None = random)
    lists: Mapping[str, Sequence[str]]
    extra_args: Mapping[str, Any]
    labels: Mapping[str, str]


def base_lists(split: Path, params: DistillParams, seed: int) -> dict[str, list[str]]:
    """The train / val lists both models use (the `fraction` sample drawn once, here, so they are the same)."""
    return {"train": subset(read_split_list(split / "train.txt"), params.fraction, seed),
            "val": subset(read_split_list(split / "val.txt"), params.val_fraction, seed)}


def pool_list(split: Path, params: DistillParams, seed: int) -> list[str]:
    return subset(read_split_list(split / "pool.txt"), params.fraction, seed) if params.use_pool else []


def _shared(params: DistillParams) -> TrainParams:
    # fraction is applied once in base_lists; train_detector sees the final lists
    return dataclasses.replace(params.train_params(), fraction=1.0, val_fraction=1.0)


def student_job(params: DistillParams, lists: Mapping[str, Sequence[str]], pool: Sequence[str],
                labels: Mapping[str, str], teacher: Path, weights: str | None) -> Job:
    extra = {"distill_model": str(Path(teacher).resolve()), "dis": params.dis} if params.dis > 0 else {}
    return Job("student", _shared(params), weights, {**lists, "train": [*lists["train"], *pool]}, extra,
               {rel: labels[rel] for rel in pool})


def control_job(params: DistillParams, lists: Mapping[str, Sequence[str]], weights: str | None) -> Job:
    """Same params, init, seed and lists as the student, minus everything that comes from the teacher."""
    return Job("control", _shared(params), weights, dict(lists), {}, {})


def run_job(job: Job, seed: int, data: Path, run_dir: Path, weights_out: Path, live: Path,
            resume: bool = True, callbacks: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """Write the job's split lists into its run folder and train it with `train_detector`."""
    from vigil.models.train import TrainPaths, train_detector

    split = Path(run_dir) / "split"
    for name, items in job.lists.items():
        write_text_atomic(split / f"{name}.txt", "".join(f"{rel}\n" for rel in items))
    paths = TrainPaths(data=data, split=split, init=Path(job.init) if job.init else None,
                       run_dir=Path(run_dir) / "train", weights=weights_out,
                       metrics=Path(run_dir) / "metrics.json", live=live)
    return train_detector(job.params, seed, paths, resume=resume, callbacks=callbacks,
                          extra_args=job.extra_args, labels=job.labels)


@dataclass(frozen=True)
class DistillPaths:
    data: Path        # dataset root
    split: Path       # split folder (train.txt, val.txt, pool.txt)
    pool_truth: Path  # withheld true boxes of the pool (measurement only)
    teacher: Path     # models/teacher/best.pt
    pretrained: Path | None  # teacher-free init weights (the control's; both models' with init: weights)
    student: Path     # models/student/best.pt
    control: Path     # models/control/best.pt
    metrics: Path     # metrics/distill.json
    live: Path        # plots/distill (student/ and control/ under it)
    run_dir: Path     # persistent work folder (.vigil/runs/distill)


def distill(params: DistillParams, seed: int, paths: DistillPaths, resume: bool = True) -> dict[str, Any]:
    """Pseudo-label the pool, train student and control, write metrics/distill.json; return it."""
    if not Path(paths.teacher).is_file():
        raise VigilError("teacher checkpoint not found", path=paths.teacher, hint="run the `train` stage first")
    inits = student_inits(params, paths.teacher, Path(paths.run_dir) / "init", paths.pretrained)
    lists = base_lists(paths.split, params, seed)
    pool = pool_list(paths.split, params, seed)
    labels, quality = label_pool(paths.teacher, paths.data, pool, paths.pool_truth, params) if pool else ({}, {})
    results = {}
    for job, out in ((student_job(params, lists, pool, labels, paths.teacher, inits.student), paths.student),
                     (control_job(params, lists, inits.control), paths.control)):
        results[job.name] = run_job(job, seed, paths.data, Path(paths.run_dir) / job.name, out,
                                    Path(paths.live) / job.name, resume=resume)
    gain = results["student"]["val"]["map50_95"] - results["control"]["val"]["map50_95"]
    metrics = {"pseudo_labels": quality, "student": results["student"], "control": results["control"],
               "kd_gain_val_map50_95": round(gain, 5), "train_images": len(lists["train"]), "pool_images": len(pool),
               "pruning": dict(inits.pruning),
               "params": {"model": params.model, "weights": str(paths.pretrained), "init": params.init, "epochs": params.epochs,
                          "imgsz": params.imgsz, "batch": params.batch, "dis": params.dis, "seed": seed,
                          "pseudo_conf": params.pseudo_conf, "use_pool": params.use_pool}}
    write_json_atomic(paths.metrics, metrics)
    return metrics
