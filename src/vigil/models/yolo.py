"""ultralytics, set up the project's way: offline, project-local settings, models from yaml + pinned weights.

Shared by the model stages (train, distill, evaluate) and the export engines:
- `configure_ultralytics` points YOLO_CONFIG_DIR at a project-local folder *before* ultralytics is
  imported, so a user's global settings file is never touched, and switches off its own DVC
  callback (vigil logs with DVCLive itself: one set of books) and its hub sync. `vigil.models`
  runs it on import, so whatever imports ultralytics through vigil finds it configured.
- `build_model` builds the architecture from its yaml and loads a local checkpoint onto it; a hub
  name such as `yolov8s.pt` never reaches ultralytics (it would try to download).
- `albumentations_transforms` turns params into albumentations objects, checked here because
  ultralytics swallows a bad pipeline with a log line.
- `export_checkpoint` writes a checkpoint without the absolute paths ultralytics records in it.
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigil.atomic import write_bytes_atomic
from vigil.errors import VigilError
from vigil.models.params import AlbumentationsStep
from vigil.offline import apply_offline_switches

DEFAULT_CONFIG_DIR = Path(".vigil/ultralytics")
PATH_ARGS = ("data", "project", "name", "save_dir", "model", "pretrained", "resume", "distill_model")
SETTINGS_OFF: dict[str, Any] = {"dvc": False, "sync": False, "clearml": False, "comet": False, "mlflow": False,
                                "raytune": False, "tensorboard": False, "wandb": False, "vscode_msg": False,
                                "openvino_msg": False}


def configure_ultralytics(config_dir: Path = DEFAULT_CONFIG_DIR) -> None:
    """Project-local ultralytics settings with every integration off; call before anything imports ultralytics."""
    apply_offline_switches()
    config_dir = Path(config_dir).resolve()
    if "ultralytics" not in sys.modules:  # the settings file is chosen once, at import
        config_dir.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    from ultralytics import settings

    wanted = {k: v for k, v in SETTINGS_OFF.items() if k in settings}
    if all(settings.get(k) == v for k, v in wanted.items()):
        return
    ours = config_dir in Path(settings.file).resolve().parents
    if ours:
        settings.update(wanted)  # saved in the project-local settings file
    else:  # ultralytics was imported first, with someone else's settings file: change this process only
        dict.update(settings, wanted)


def is_hub_name(name: str) -> bool:
    """A bare `*.pt` name with no such file is what ultralytics would download from its hub."""
    return name.endswith(".pt") and not Path(name).exists()


def build_model(model_yaml: str, weights: Path | str | None = None, names: Sequence[str] | None = None) -> Any:
    """`YOLO(model_yaml)` with `weights` (a local checkpoint) transferred by name and shape.

    With `names` (the dataset's classes) the head is built for them before the weights load, so a
    checkpoint of the same classes keeps its classifier; a yaml's default 80-class head would
    drop it, and ultralytics' trainer would then start that layer from random weights.
    """
    from ultralytics import YOLO

    if not model_yaml.endswith((".yaml", ".yml")):
        raise VigilError(f"model {model_yaml!r} is not an architecture yaml", field="model",
                         hint="use e.g. yolov8s.yaml and put the checkpoint under `weights:`")
    try:
        model: Any = YOLO(model_yaml)
    except (FileNotFoundError, KeyError, AssertionError) as exc:
        raise VigilError(f"cannot build model {model_yaml!r}: {exc}", field="model") from None
    if names is not None and len(names) != model.model.yaml.get("nc"):
        from ultralytics.nn.tasks import DetectionModel

        head = DetectionModel(model.model.yaml, nc=len(names), verbose=False)
        head.args = model.model.args
        model.model = head
    if names is not None:
        model.model.names = dict(enumerate(names))
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            hint = ("a hub name is never downloaded: run the `pretrained` stage or give a local checkpoint"
                    if is_hub_name(str(weights)) else "run the `pretrained` stage first")
            raise VigilError("init weights not found", path=path, field="weights", hint=hint)
        model.load(str(path))
    return model


def albumentations_transforms(steps: Sequence[AlbumentationsStep], section: str = "train.augment") -> list[Any]:
    """albumentations objects from params; an unknown name or a bad argument is an error naming the step."""
    import albumentations as A

    transforms = []
    for i, step in enumerate(steps):
        where = f"{section}.albumentations[{i}]"
        cls = getattr(A, step.name, None)
        if not (isinstance(cls, type) and issubclass(cls, A.BasicTransform)):
            raise VigilError(f"{step.name!r} is not an albumentations transform", field=f"{where}.name",
                             hint="use a class name of albumentations 2.x, e.g. Blur, CLAHE, RandomBrightnessContrast")
        try:
            transforms.append(cls(p=step.p, **step.args))
        except Exception as exc:  # albumentations validates its arguments (pydantic) at construction
            first = str(exc).strip().splitlines()
            raise VigilError(f"{step.name}({step.args}) is refused: {first[0] if first else exc}",
                             field=f"{where}.args") from None
    try:  # what ultralytics will build; it would only log a failure and train without the pipeline
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no transform to process bboxes" for pixel-only lists
            A.Compose(transforms, bbox_params=A.BboxParams(format="yolo", label_fields=["class_labels"]))
    except Exception as exc:
        raise VigilError(f"the albumentations pipeline does not compose: {exc}", field=section) from None
    return transforms


def load_checkpoint_dict(path: Path) -> dict[str, Any]:
    """A checkpoint this pipeline wrote during a run; `weights_only` unpickling first (`vigil.models.trust`)."""
    from vigil.models.trust import load_pipeline_checkpoint

    return load_pipeline_checkpoint(path)


def is_resumable(path: Path) -> bool:
    """ultralytics' own rule: a checkpoint of an unfinished run keeps its epoch and optimizer."""
    if not Path(path).is_file():
        return False
    try:
        ckpt = load_checkpoint_dict(path)
    except VigilError:
        return False
    return ckpt.get("epoch", -1) >= 0 and ckpt.get("optimizer") is not None


def export_checkpoint(src: Path, dest: Path, train_args: dict[str, Any]) -> None:
    """Copy a trained checkpoint with its path-bearing train args replaced and no timestamp, atomically."""
    import torch

    def scrub(args: dict[str, Any]) -> dict[str, Any]:
        args = {k: v for k, v in args.items() if k not in PATH_ARGS}
        return {**args, **train_args}

    ckpt = load_checkpoint_dict(src)
    ckpt["train_args"] = scrub(dict(ckpt.get("train_args") or {}))
    model: Any = ckpt.get("model")
    if isinstance(getattr(model, "args", None), dict):  # ultralytics keeps a second copy on the model
        model.args = scrub(model.args)
    ckpt.pop("date", None)
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    write_bytes_atomic(dest, buffer.getvalue())
