"""The dataset as ultralytics reads it, built at run time in a work folder and never inside data/.

ultralytics writes beside what it reads: a `labels/<dir>.cache` per label folder and, with
`cache='disk'`, an `.npy` per image. Raw data must stay untouched (DVC would see a changed
`data/`), so each run gets a view: `images/…` are per-file symlinks (copies where symlinks are
not allowed) into the dataset, `labels/…` are copies (tiny text files), the split lists hold
`./images/…` entries relative to the view, and `data.yaml` carries the only absolute path. The
view lives in the run folder, outside every tracked output.
"""

from __future__ import annotations

import math
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from vigil.atomic import write_text_atomic
from vigil.data.layout import label_rel_for, read_classes, resolve_inside
from vigil.errors import VigilError


def subset(items: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A seeded sample of ceil(fraction * n) items (at least one), kept in list order."""
    if fraction >= 1.0 or not items:
        return list(items)
    keep = max(1, math.ceil(fraction * len(items)))
    chosen = set(random.Random(seed).sample(range(len(items)), keep))
    return [item for i, item in enumerate(items) if i in chosen]


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_view(data_root: Path, lists: Mapping[str, Sequence[str]], out_dir: Path,
               labels: Mapping[str, str] | None = None) -> Path:
    """Write the view of `data_root` restricted to `lists` (split name → image paths); return its data.yaml.

    `labels` (image path → YOLO label text) replaces or supplies label files in the view only, e.g. a
    teacher's pseudo-labels for unlabelled pool images; the dataset's own files are never changed.
    """
    labels = labels or {}
    data_root = Path(data_root)
    names = read_classes(data_root)
    out_dir = Path(out_dir).resolve()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    done: set[str] = set()
    for split, items in lists.items():
        if not items:
            raise VigilError(f"the {split} list is empty", field=split,
                             hint="the split needs at least one image for ultralytics to train or validate")
        for rel in items:
            if rel in done:
                continue
            image = resolve_inside(data_root, rel)
            if not image.is_file():
                raise VigilError(f"image {rel!r} of the {split} list is missing", path=data_root,
                                 hint="re-run the `split` stage on this dataset")
            _link_or_copy(image, out_dir / rel)
            label, target = data_root / label_rel_for(rel), out_dir / label_rel_for(rel)
            if rel in labels:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(labels[rel], encoding="utf-8")
            elif label.is_file():  # no label file = a background image, as in ultralytics
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(label, target)
            done.add(rel)
        write_text_atomic(out_dir / f"{split}.txt", "".join(f"./{rel}\n" for rel in items))
    spec = {"path": str(out_dir), **{split: f"{split}.txt" for split in lists},
            "names": dict(enumerate(names))}
    yaml_path = out_dir / "data.yaml"
    write_text_atomic(yaml_path, yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return yaml_path
