"""Training curves with DVCLive: one step per epoch, resumable, in a folder the stage then publishes.

ultralytics' own DVC callback is off (yolo.configure_ultralytics); these callbacks log the same
numbers once. A resumed run reopens the log (`Live(resume=True)`) after dropping any rows at or
past the epoch it restarts from, so a stop between a checkpoint and its log row leaves no duplicate.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Any


def _clean(name: str) -> str:
    """`metrics/mAP50(B)` → `metrics/mAP50`: stable names for plots and `dvc metrics diff`."""
    return name.replace("(B)", "")


def truncate_from(live_dir: Path, step: int) -> None:
    """Drop rows with step >= `step` from every DVCLive .tsv under `live_dir`."""
    for tsv in Path(live_dir).glob("plots/metrics/**/*.tsv"):
        with tsv.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
        if not rows or "step" not in rows[0]:
            continue
        col = rows[0].index("step")
        kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[col])) < step]
        with tsv.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, delimiter="\t", lineterminator="\n").writerows(kept)


def read_series(live_dir: Path, name: str) -> list[tuple[int, float]]:
    """(step, value) rows of one logged metric, e.g. `epoch_seconds`."""
    tsv = Path(live_dir) / "plots" / "metrics" / f"{name}.tsv"
    if not tsv.is_file():
        return []
    with tsv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    leaf = name.rsplit("/", 1)[-1]
    return [(int(float(r["step"])), float(r[leaf])) for r in rows]


def is_rank_zero() -> bool:
    """True outside DDP and in its rank-0 worker (torch.distributed.run sets RANK in each worker)."""
    try:
        return int(os.environ.get("RANK", "-1")) <= 0
    except ValueError:
        return True


class LiveLogger:
    """ultralytics callbacks that log each finished epoch (train losses, val metrics, lr, seconds) to DVCLive."""

    def __init__(self, live_dir: Path, resume: bool) -> None:
        self.live_dir = Path(live_dir)
        self.resume = resume
        self.live: Any = None
        self._epoch_start = 0.0
        self._trained = False  # set by a train epoch, so the final_eval call of on_fit_epoch_end is skipped

    def callbacks(self) -> dict[str, list[Any]]:
        return {"on_train_start": [self.on_train_start], "on_train_epoch_start": [self.on_train_epoch_start],
                "on_train_epoch_end": [self.on_train_epoch_end], "on_fit_epoch_end": [self.on_fit_epoch_end],
                "on_train_end": [self.on_train_end]}

    def on_train_start(self, trainer: Any) -> None:
        from dvclive import Live

        if not is_rank_zero():  # under DDP every rank runs the callbacks; rank 0 alone writes
            return
        if self.resume:
            truncate_from(self.live_dir, trainer.start_epoch)
        self.live = Live(dir=str(self.live_dir), resume=self.resume, save_dvc_exp=False, dvcyaml=None)
        self.live.log_params({"epochs": trainer.epochs, "imgsz": trainer.args.imgsz, "batch": trainer.args.batch})

    def on_train_epoch_start(self, trainer: Any) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any) -> None:
        self._trained = True

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if self.live is None or not self._trained:
            return
        self._trained = False
        self.live.step = trainer.epoch
        values: dict[str, Any] = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **(trainer.metrics or {}),
                                  **(trainer.lr or {})}
        for name, value in values.items():
            value = float(value)
            if math.isfinite(value):
                self.live.log_metric(_clean(name), value, plot=True)
        self.live.log_metric("epoch_seconds", time.perf_counter() - self._epoch_start, plot=True)
        self.live.next_step()

    def on_train_end(self, trainer: Any) -> None:
        if self.live is not None:
            self.live.end()
            self.live = None
