"""Load a teacher folder with transformers' own classes: local files only, safetensors only.

The family (OWLv2 or Grounding DINO) is read from the folder's `config.json` `model_type`, so the
folder a team exported with `save_pretrained` is all vigil needs. Nothing is fetched from a hub and
no pickle is ever opened: a folder with only `pytorch_model.bin` is refused with the fix named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from vigil.errors import VigilError

CONFIG = "config.json"
SAFETENSORS = "*.safetensors"
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt", "tf_model.h5")


class Family(Enum):
    """The prompted detectors vigil knows, by their transformers `model_type`."""

    OWLV2 = "owlv2"
    GROUNDING_DINO = "grounding-dino"


@dataclass(frozen=True)
class Teacher:
    """A loaded teacher: the model (eval mode), its processor, its family and the folder it came from."""

    folder: Path
    family: Family
    model: Any
    processor: Any


def read_family(folder: Path) -> Family:
    """The family named by `folder/config.json`; a missing, unreadable or foreign config is a VigilError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VigilError(
            "teacher folder not found",
            path=folder,
            hint="give the folder the team saved with save_pretrained (config.json, *.safetensors, processor files)",
        )
    config = folder / CONFIG
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError(
            "config.json is missing",
            path=folder,
            hint="a teacher folder is what model.save_pretrained(folder) writes",
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VigilError(
            f"config.json is not JSON ({exc})", path=config, hint="re-save the model"
        ) from None
    model_type = data.get("model_type") if isinstance(data, dict) else None
    known = ", ".join(f.value for f in Family)
    try:
        return Family(model_type)
    except ValueError:
        raise VigilError(
            f"model_type {model_type!r} is not a teacher vigil can prompt",
            path=config,
            field="model_type",
            hint=f"supported: {known}",
        ) from None


def weight_files(folder: Path) -> list[Path]:
    """The folder's safetensors weight files, sorted; none (or only pickles) is a VigilError."""
    folder = Path(folder)
    files = sorted(folder.glob(SAFETENSORS))
    if files:
        return files
    pickled = [name for name in PICKLES if (folder / name).exists()]
    hint = (
        f"it holds {pickled[0]}, which vigil never unpickles: re-save with "
        "model.save_pretrained(folder, safe_serialization=True)"
        if pickled
        else "save the model with model.save_pretrained(folder)"
    )
    raise VigilError("no *.safetensors weights", path=folder, hint=hint)


def model_class(family: Family) -> Any:
    """transformers' detection class of `family`."""
    from transformers import GroundingDinoForObjectDetection, Owlv2ForObjectDetection

    return Owlv2ForObjectDetection if family is Family.OWLV2 else GroundingDinoForObjectDetection


def processor_class(family: Family) -> Any:
    """transformers' processor class of `family` (image processor + tokenizer)."""
    from transformers import AutoProcessor, Owlv2Processor

    return Owlv2Processor if family is Family.OWLV2 else AutoProcessor


def quiet_transformers() -> None:
    """No transformers progress bars or info lines: a command's output stays its own, one line per error."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def load_model(folder: Path, family: Family) -> Any:
    """The model of `folder` (eval mode), from its safetensors only."""
    weight_files(folder)
    quiet_transformers()
    try:
        model = model_class(family).from_pretrained(
            folder, local_files_only=True, use_safetensors=True
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise VigilError(
            f"transformers could not load the {family.value} model: {str(exc).splitlines()[0]}",
            path=folder,
            hint="check that config.json and the *.safetensors files were saved together",
        ) from None
    return model.eval()


def load_processor(folder: Path, family: Family) -> Any:
    """The processor of `folder` (its image processor and tokenizer files)."""
    try:
        return processor_class(family).from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise VigilError(
            f"transformers could not load the processor: {str(exc).splitlines()[0]}",
            path=folder,
            hint="save the processor beside the model: processor.save_pretrained(folder)",
        ) from None


def load_teacher(folder: Path, adapter: Path | None = None) -> Teacher:
    """Load `folder` (and, if given, a LoRA adapter saved by `vigil teacher lora` for exactly this base)."""
    folder = Path(folder)
    family = read_family(folder)
    processor = load_processor(folder, family)
    model = load_model(folder, family)
    if adapter is not None:
        from vigil.teachers.lora import attach_adapter

        model = attach_adapter(model, folder, Path(adapter)).eval()
    return Teacher(folder, family, model, processor)
