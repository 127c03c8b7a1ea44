"""`vigil data merge`: combine canonical datasets into one, optionally sampling some of them.

Each input keeps its own subfolder (`images/<name>/…`, name = the folder's name, made unique), so
file names never collide; classes are united by name (first input's order, then new names); every
manifest line keeps its fields and gains `dataset` and `merged_from` (provenance). `--sample
NAME=RATIO` keeps that share of an input's images, chosen with the seed.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import atomic_dir
from vigil.data.importers.writer import MODE_CONFIG, PROVENANCE, SEGMENTS, Summary, mode_config
from vigil.data.layout import CLASSES, MANIFEST, label_rel_for, read_classes, read_manifest, resolve_inside
from vigil.errors import VigilError
from vigil.progress import progress


@dataclass
class Input:
    name: str
    root: Path
    classes: list[str]
    records: list[dict[str, Any]]
    mode: str


def parse_samples(pairs: list[str] | None, names: list[str], roots: list[Path]) -> dict[str, float]:
    """`NAME=RATIO` (name or path of an input) → {name: ratio in (0, 1]}."""
    out: dict[str, float] = {}
    for pair in pairs or []:
        key, sep, value = pair.rpartition("=")
        match = [n for n, r in zip(names, roots) if key in (n, str(r), r.name)]
        if not sep or not match:
            raise VigilError(f"{pair!r} does not name an input as NAME=RATIO", field="--sample",
                             hint=f"inputs: {', '.join(names)}")
        try:
            ratio = float(value)
        except ValueError:
            raise VigilError(f"ratio {value!r} is not a number", field="--sample") from None
        if not 0 < ratio <= 1:
            raise VigilError(f"ratio {ratio} is not within (0, 1]", field="--sample")
        out[match[0]] = ratio
    return out


def load_input(root: Path, taken: set[str]) -> Input:
    if not root.is_dir():
        raise VigilError("input folder not found", path=root)
    name = root.resolve().name
    base, k = name, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    mode_path = root / MODE_CONFIG
    mode = json.loads(mode_path.read_text())["mode"] if mode_path.is_file() else "boxes"
    return Input(name, root, read_classes(root), read_manifest(root), mode)


def _remap(path: Path, ids: list[int]) -> str:
    """A label file with class ids renumbered to the merged classes.txt ('' when there is none)."""
    if not path.is_file():
        return ""
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = text.split()
        if not fields:
            continue
        try:
            cls = int(fields[0])
            lines.append(" ".join([str(ids[cls]), *fields[1:]]) + "\n")
        except (ValueError, IndexError):
            raise VigilError(f"class id {fields[0]!r} is not in classes.txt", path=path, line=number,
                             field="class", hint="run `vigil data check` on this input") from None
    return "".join(lines)


def merge_datasets(roots: list[Path], out: Path, samples: list[str] | None = None, seed: int = 0) -> Summary:
    taken: set[str] = set()
    inputs = [load_input(Path(r), taken) for r in roots]
    ratios = parse_samples(samples, [i.name for i in inputs], [Path(r) for r in roots])
    classes = list(dict.fromkeys(c for i in inputs for c in i.classes))
    modes = {i.mode for i in inputs}
    mode = "boxes" if "boxes" in modes else "both"
    summary = Summary("merge", out, mode=mode, boxes=Counter({c: 0 for c in classes}))
    rng = np.random.default_rng(seed)
    lines: list[dict[str, Any]] = []
    with atomic_dir(out) as tmp:
        for inp in inputs:
            records = inp.records
            if inp.name in ratios:
                keep = sorted(rng.choice(len(records), size=round(len(records) * ratios[inp.name]), replace=False))
                reason = f"not sampled from {inp.name} (--sample {ratios[inp.name]:g})"
                summary.skipped[reason] = len(records) - len(keep)
                records = [records[i] for i in keep]
            ids = [classes.index(c) for c in inp.classes]
            for record in progress(records, desc=f"merge {inp.name}", total=len(records)):
                image = str(record["image"])
                rel = f"images/{inp.name}/{image.removeprefix('images/')}"
                _copy(resolve_inside(inp.root, image), tmp / rel)
                if (inp.root / label_rel_for(image)).is_file():  # an unlabelled pool image has none
                    labels = _remap(inp.root / label_rel_for(image), ids)
                    _write(tmp / label_rel_for(rel), labels)
                    summary.boxes.update(classes[int(line.split()[0])] for line in labels.splitlines())
                seg = inp.root / SEGMENTS / label_rel_for(image).removeprefix("labels/")
                if mode != "boxes" and seg.is_file():
                    _write(tmp / SEGMENTS / label_rel_for(rel).removeprefix("labels/"), _remap(seg, ids))
                new = {**record, "image": rel, "dataset": inp.name, "merged_from": f"{inp.name}:{image}"}
                if isinstance(record.get("calibration"), str):
                    new["calibration"] = f"calibration/{inp.name}/{record['calibration'].removeprefix('calibration/')}"
                summary.ignored += len(record.get("ignore", []))
                lines.append(new)
            if (inp.root / "calibration").is_dir():
                shutil.copytree(inp.root / "calibration", tmp / "calibration" / inp.name)
        summary.images = len(lines)
        (tmp / MANIFEST).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in lines), encoding="utf-8")
        (tmp / CLASSES).write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        (tmp / MODE_CONFIG).write_text(json.dumps(mode_config(mode, classes), indent=2, sort_keys=True) + "\n")
        (tmp / PROVENANCE).write_text(json.dumps({
            "merged": [{"name": i.name, "path": str(i.root.resolve()), "images": len(i.records),
                        "sample": ratios.get(i.name)} for i in inputs],
            "seed": seed, "summary": summary.as_dict()}, indent=2, sort_keys=True) + "\n")
    return summary


def _copy(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise VigilError("image listed in manifest.jsonl does not exist", path=src, field="image",
                         hint="run `vigil data check` on this input")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
