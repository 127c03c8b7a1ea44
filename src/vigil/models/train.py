"""Detector training: ultralytics YOLO fine-tuned on the train split, the best epoch chosen on val.

`train_detector` is the whole job of the `train` stage (the teacher); the `distill` stage reuses it
with `extra_args` (e.g. `distill_model`, `dis`) and `labels` (pseudo-labels for pool images). Everything it does lives in a persistent run
folder outside the DVC outputs (the dataset view, ultralytics' run with its last.pt, the DVCLive
log), so a stopped run can be resumed: when the folder holds an unfinished run of the *same*
fingerprint (params, seed, split lists, classes, init weights), training continues from its
last.pt with ultralytics' `resume=True`; anything else starts afresh. Only finished results are
published: the best checkpoint (absolute paths scrubbed), the metrics JSON and the DVCLive folder.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.atomic import atomic_dir, write_json_atomic
from vigil.data.layout import read_classes
from vigil.detection.split_lists import read_split_list
from vigil.errors import VigilError
from vigil.models.augment_presets import expand_presets
from vigil.models.cache_choice import choose_cache
from vigil.models.dataset import build_view, subset
from vigil.models.live import LiveLogger, read_series
from vigil.models.params import TrainParams
from vigil.models.yolo import (
    albumentations_transforms,
    build_model,
    export_checkpoint,
    is_resumable,
)

RESUME_ARGS = ("distill_model",)  # extra args ultralytics takes again on resume (the rest come from last.pt)
RUN_NAME = "ultralytics"   # ultralytics' run folder inside the run dir (weights/last.pt, results.csv)
Callbacks = Mapping[str, Sequence[Callable[[Any], None]]]


@dataclass(frozen=True)
class TrainPaths:
    data: Path        # the dataset root (images/, labels/, classes.txt)
    split: Path       # folder of the split lists (train.txt, val.txt)
    run_dir: Path     # persistent work folder, not a DVC output: the view, ultralytics' run, the DVCLive log
    weights: Path     # published best checkpoint (models/teacher/best.pt)
    metrics: Path     # published metrics (metrics/train.json)
    live: Path        # published DVCLive folder (plots/train)
    init: Path | None  # init weights transferred by name and shape (None = random init)

    @property
    def last(self) -> Path:
        return self.run_dir / RUN_NAME / "weights" / "last.pt"


def fingerprint(params: TrainParams, seed: int, lists: Mapping[str, Sequence[str]], names: Sequence[str],
                weights: Path | None, extra_args: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """What a run depends on; a run folder is resumed only by a run of the same fingerprint.

    Files it names (the init weights, a `distill_model` checkpoint) count by content, not by path.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps({"params": dataclasses.asdict(params), "seed": seed, "lists": lists,
                              "names": list(names), "extra": {k: str(v) for k, v in extra_args.items()},
                              "labels": dict(labels)}, sort_keys=True).encode())
    files = [weights, *extra_args.values()]
    for path in files:
        if isinstance(path, (str, Path)) and str(path).endswith(".pt") and Path(path).is_file():
            with Path(path).open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def ultralytics_args(params: TrainParams, seed: int) -> dict[str, Any]:
    """The `model.train(**kwargs)` arguments from the `train:` params (data and run folder added by the caller)."""
    aug = dataclasses.asdict(params.augment)
    for own in ("albumentations", "presets", "preset_p"):  # vigil's, not ultralytics' knobs
        aug.pop(own)
    steps = [*params.augment.albumentations,
             *expand_presets(params.augment.presets, params.augment.preset_p)]
    return {"epochs": params.epochs, "imgsz": params.imgsz, "batch": params.batch, "nbs": params.nbs,
            "optimizer": params.optimizer, "lr0": params.lr0, "lrf": params.lrf, "momentum": params.momentum,
            "weight_decay": params.weight_decay, "warmup_epochs": params.warmup_epochs, "cos_lr": params.cos_lr,
            "patience": params.patience, "freeze": params.freeze, "workers": params.workers,
            "cache": params.cache, "seed": seed,  # `auto` is resolved by train_detector (cache_choice)
            "deterministic": params.deterministic, "device": params.device, "plots": params.plots,
            "val": True, "save": True, "verbose": True, **aug,
            "augmentations": albumentations_transforms(steps)}


def read_results(csv_path: Path) -> list[dict[str, float]]:
    """ultralytics' results.csv, one row per epoch (the last row wins where a resume repeated one)."""
    if not csv_path.is_file():
        return []
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    by_epoch = {int(row["epoch"]): row for row in rows}
    return [by_epoch[e] for e in sorted(by_epoch)]


def summarize(final: Mapping[str, Any], rows: Sequence[Mapping[str, float]], epoch_seconds: Sequence[float],
              wall_seconds: float, resumed: bool) -> dict[str, Any]:
    """metrics/train.json: the best checkpoint's val metrics and how the run went.

    `final` is the trainer's last validation of best.pt. Under DDP the launching process never
    validates (its `trainer.metrics` is None: rank 0 did the work in another process), so the val
    block falls back to the best epoch's row of results.csv, which rank 0 wrote for the same weights.
    """
    best = max(rows, key=lambda r: r.get("metrics/mAP50-95(B)", 0.0)) if rows else {}
    if not final:
        final = best
    return {
        "val": {"map50": round(float(final.get("metrics/mAP50(B)", 0.0)), 5),
                "map50_95": round(float(final.get("metrics/mAP50-95(B)", 0.0)), 5),
                "precision": round(float(final.get("metrics/precision(B)", 0.0)), 5),
                "recall": round(float(final.get("metrics/recall(B)", 0.0)), 5)},
        "epochs_run": len(rows),
        "best_epoch": int(best["epoch"]) if best else 0,
        "seconds_per_epoch": round(sum(epoch_seconds) / len(epoch_seconds), 2) if epoch_seconds else 0.0,
        "wall_seconds": round(wall_seconds, 1),
        "resumed": resumed,
    }


def train_detector(params: TrainParams, seed: int, paths: TrainPaths, resume: bool = True,
                   callbacks: Callbacks | None = None, extra_args: Mapping[str, Any] | None = None,
                   labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Train (or resume), then publish best.pt, the metrics and the curves; return the metrics.

    `extra_args` go to `model.train` as they are (and into the fingerprint); `labels` (image path →
    YOLO label text) supply labels in the run's dataset view only (build_view). `callbacks` are
    ultralytics callbacks by event name, added after the DVCLive logger's.
    """
    extra_args, labels = dict(extra_args or {}), dict(labels or {})
    start = time.perf_counter()
    names = read_classes(paths.data)
    lists = {"train": subset(read_split_list(paths.split / "train.txt"), params.fraction, seed),
             "val": subset(read_split_list(paths.split / "val.txt"), params.val_fraction, seed)}
    weights = paths.init
    kwargs = {**ultralytics_args(params, seed), **extra_args}  # checks the albumentations pipeline first
    cache = choose_cache(params.cache, paths.data, lists["train"] + lists["val"], params.imgsz,
                         Path(paths.run_dir))
    print(cache.line())
    kwargs["cache"] = False if cache.cache == "none" else cache.cache
    key = fingerprint(params, seed, lists, names, weights, extra_args, labels)
    run_dir = Path(paths.run_dir).resolve()
    state = run_dir / "fingerprint.txt"
    resuming = resume and state.is_file() and state.read_text().strip() == key and is_resumable(paths.last)
    if resuming:
        from ultralytics import YOLO

        print(f"train: resuming the stopped run from {paths.last}")
        model = YOLO(str(paths.last))
    else:
        import torch

        # layers the checkpoint does not cover (a head for other classes) are initialised here, before
        # ultralytics seeds anything, and its trainer then copies them: seed them, or each run differs
        torch.manual_seed(seed)
        model = build_model(params.model, weights, names)  # checks the yaml and the weights before any work
        for stale in (run_dir / RUN_NAME, run_dir / "live"):
            shutil.rmtree(stale, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        state.write_text(key + "\n")
    data_yaml = build_view(paths.data, lists, run_dir / "dataset", labels=labels)
    if resuming:
        run_args = {"resume": True, "data": str(data_yaml), "save_dir": str(run_dir / RUN_NAME),
                    **{k: kwargs[k] for k in ("workers", "cache", "device", "plots", "augmentations")},
                    **{k: v for k, v in extra_args.items() if k in RESUME_ARGS}}
    else:
        run_args = {**kwargs, "data": str(data_yaml), "project": str(run_dir), "name": RUN_NAME, "exist_ok": True}

    logger = LiveLogger(run_dir / "live", resume=resuming)
    for event, funcs in [*logger.callbacks().items(), *(callbacks or {}).items()]:
        for func in funcs:
            model.add_callback(event, func)
    model.train(**run_args)
    trainer: Any = model.trainer

    best = run_dir / RUN_NAME / "weights" / "best.pt"
    if not best.is_file():
        raise VigilError("training ended without a best checkpoint", path=best.parent,
                         hint="see ultralytics' log above; the run folder is kept for a look")
    rows = read_results(run_dir / RUN_NAME / "results.csv")
    seconds = [value for _, value in read_series(run_dir / "live", "epoch_seconds")]
    metrics = summarize(trainer.metrics or {}, rows, seconds, time.perf_counter() - start, resuming)
    metrics["cache"] = cache.as_dict()
    export_checkpoint(best, paths.weights, {"model": params.model, "pretrained": str(weights) if weights else None,
                                            "data": "(built at run time from the split lists)"})
    with atomic_dir(paths.live) as tmp:
        shutil.copytree(run_dir / "live", tmp, dirs_exist_ok=True)
    write_json_atomic(paths.metrics, metrics)
    return metrics
