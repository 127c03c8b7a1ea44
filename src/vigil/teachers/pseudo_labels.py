"""A prompted teacher's pseudo-labels, written the way the student's training data reads them.

The YOLO teacher's pool labels (`vigil.models.distill.label_pool`) are image path → YOLO label text
(`pseudo_label_text`: boxes at or above the confidence, clipped, normalized `class cx cy w h`), and
`build_view` writes them into the student's dataset view in place of label files. This module makes
the same mapping with the same function, and stores it as a folder mirroring the dataset —
`labels/<…>.txt` beside each image's path, ultralytics' images/ → labels/ rule — plus
`pseudo_labels.json` (the image list, the teacher and the settings), so a later distill run reads
the labels back with `read_pseudo_labels` and hands them to `build_view` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vigil.atomic import atomic_dir, write_json_atomic, write_text_atomic
from vigil.data.layout import label_rel_for, resolve_inside
from vigil.errors import VigilError
from vigil.models.distill import pseudo_label_text
from vigil.models.inference import iter_images
from vigil.teachers.detect import DetectSettings, detect
from vigil.teachers.loading import Teacher
from vigil.teachers.prompts import Prompts

RECORD = "pseudo_labels.json"


@dataclass(frozen=True)
class LabelSettings:
    """The pseudo-label confidence and the detection settings under it."""

    conf: float  # boxes at or above this become labels (distill.pseudo_conf)
    detect: DetectSettings

    def __post_init__(self) -> None:
        if not 0 < self.conf <= 1:
            raise VigilError("the pseudo-label confidence must be in (0, 1]", field="conf")


def pseudo_labels(
    teacher: Teacher, data: Path, images: Sequence[str], prompts: Prompts, settings: LabelSettings
) -> dict[str, str]:
    """Image path → YOLO label text ("" = a background image) of `images` (paths under `data`)."""
    labels: dict[str, str] = {}
    for rel, array in zip(images, iter_images(Path(data), images), strict=True):
        height, width = array.shape[:2]
        found = detect(teacher, array, prompts, settings.detect)
        labels[rel] = pseudo_label_text(found, width, height, settings.conf)
    return labels


def write_pseudo_labels(out: Path, labels: Mapping[str, str], record: Mapping[str, Any]) -> Path:
    """Write `labels` under `out/labels/…` and the record; the folder appears whole or not at all."""
    with atomic_dir(Path(out)) as tmp:
        for rel, text in labels.items():
            write_text_atomic(resolve_inside(tmp, label_rel_for(rel)), text)
        write_json_atomic(tmp / RECORD, {**record, "images": list(labels)})
    return Path(out)


def read_pseudo_labels(out: Path) -> dict[str, str]:
    """The labels a `write_pseudo_labels` folder holds: image path → YOLO text, for `build_view`."""
    import json

    out = Path(out)
    try:
        record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError(
            f"{RECORD} is missing: not a pseudo-label folder",
            path=out,
            hint="write it with `vigil teacher pseudo-label`",
        ) from None
    labels = {}
    for rel in record["images"]:
        path = resolve_inside(out, label_rel_for(rel))
        if not path.is_file():
            raise VigilError(f"the label of {rel!r} is missing", path=path, hint="label again")
        labels[rel] = path.read_text(encoding="utf-8")
    return labels


def label_record(
    teacher: Teacher, prompts: Prompts, settings: LabelSettings, adapter: Path | None
) -> dict[str, Any]:
    """What made the labels: the teacher folder, family, adapter, prompts and settings."""
    return {
        "teacher": str(teacher.folder),
        "family": teacher.family.value,
        "adapter": str(adapter) if adapter is not None else None,
        "prompts": [
            {"text": t, "class": c} for t, c in zip(prompts.texts, prompts.class_ids, strict=True)
        ],
        "conf": settings.conf,
        **{k: v for k, v in asdict(settings.detect).items()},
    }
