"""The error gallery: the test images a model gets most wrong, drawn, for DVC and the review.

Per model named in `evaluate.gallery`, the N images with the most missed true boxes and the N with
the most false boxes (at the deployed confidence), each drawn with its true positives, false
positives and misses in three colours (`vigil.detection.draw`), class and score labelled. File
names sort by kind and rank, so DVC's image plots list them worst first. `errors.json` beside them
holds every test image's TP / FP / missed counts per model and the gallery's index: `vigil report`
compares it with the base's to show what got worse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vigil.atomic import write_bytes_atomic
from vigil.data.layout import resolve_inside
from vigil.detection.draw import FP, MISS, TP, Mark, decode_image, draw_marks, encode_jpeg
from vigil.errors import VigilError
from vigil.metrics.image_errors import KINDS, ImageErrors, worst

GALLERY = "gallery"  # the gallery's folder inside evaluate's plots folder
ERRORS = "errors.json"  # per-image counts and the gallery's index, beside it
MAX_SIDE = 16384  # an image claiming a larger side is not drawn (the dataset was validated anyway)


def _name(class_names: Sequence[str], cls: int) -> str:
    return class_names[cls] if 0 <= cls < len(class_names) else str(cls)


def error_marks(errors: ImageErrors, class_names: Sequence[str]) -> list[Mark]:
    """TP and FP detections labelled `class score`, and each missed true box labelled `class`."""
    dets, truth = errors.detections, errors.truth
    marks = [
        Mark(
            (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            TP if ok else FP,
            f"{_name(class_names, int(c))} {s:.2f}",
        )
        for b, c, s, ok in zip(dets.boxes, dets.classes, dets.scores, errors.correct, strict=True)
    ]
    marks += [
        Mark((float(b[0]), float(b[1]), float(b[2]), float(b[3])), MISS, _name(class_names, int(c)))
        for b, c, found in zip(truth.boxes, truth.classes, errors.found, strict=True)
        if not found
    ]
    return marks


def flat_name(image: str) -> str:
    """`images/lab/000214.jpg` → `lab__000214`: one file name per dataset image."""
    rel = image[len("images/") :] if image.startswith("images/") else image
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    return stem.replace("/", "__")


def draw_errors(data: Path, errors: ImageErrors, class_names: Sequence[str]) -> bytes:
    """The image of `errors` with its boxes drawn, as JPEG bytes."""
    path = resolve_inside(data, errors.truth.image)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VigilError(f"cannot read the image: {exc.strerror or exc}", path=path) from None
    image = decode_image(raw, MAX_SIDE)
    if image is None:
        raise VigilError("not a decodable image", path=path, hint="run `vigil data check` on it")
    return encode_jpeg(draw_marks(image, error_marks(errors, class_names)))


def write_gallery(
    folder: Path,
    data: Path,
    errors: Mapping[str, Sequence[ImageErrors]],
    counts: Mapping[str, int],
    class_names: Sequence[str],
) -> dict[str, list[dict[str, Any]]]:
    """Draw each model's worst images into `folder/<model>/`; return the index (model → entries)."""
    index: dict[str, list[dict[str, Any]]] = {}
    for model in sorted(counts):
        if model not in errors:
            continue
        entries = []
        for kind in KINDS:
            for rank, item in enumerate(worst(errors[model], kind, counts[model]), 1):
                name = f"{kind}_{rank:02d}_{flat_name(item.truth.image)}.jpg"
                write_bytes_atomic(folder / model / name, draw_errors(data, item, class_names))
                entries.append(
                    {
                        "file": f"{GALLERY}/{model}/{name}",
                        "image": item.truth.image,
                        "kind": kind,
                        "rank": rank,
                        **item.counts(),
                    }
                )
        index[model] = entries
    return index


def error_table(
    errors: Mapping[str, Sequence[ImageErrors]],
    index: Mapping[str, list[dict[str, Any]]],
    *,
    conf: float,
    iou: float,
) -> dict[str, Any]:
    """The document `errors.json` holds: settings, per model per image counts, the gallery index."""
    return {
        "conf": conf,
        "iou": iou,
        "models": {
            model: {e.truth.image: e.counts() for e in items} for model, items in errors.items()
        },
        "gallery": dict(index),
    }
