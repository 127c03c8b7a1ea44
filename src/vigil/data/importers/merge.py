"""`vigil data merge`: combine canonical datasets into one, optionally sampling some of them.

Each input keeps its own subfolder (`images/<name>/…`, name = the folder's name, made unique), so
file names never collide; classes are united by name (first input's order, then new names); every
manifest line keeps its fields and gains `dataset` and `merged_from` (provenance). `--sample
NAME=RATIO` keeps that share of an input's images, chosen with the seed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import atomic_dir
from vigil.data.importers.common import Where, inside, load_json, read_class_lines, read_text, steps
from vigil.data.importers.output import MARKER, marker, writing
from vigil.data.importers.writer import (
    MODE_CONFIG,
    PROVENANCE,
    SEGMENTS,
    STUDENTS,
    Summary,
    json_text,
    mode_config,
    verify_images,
)
from vigil.data.layout import CLASSES, MANIFEST, is_safe_relpath, label_rel_for, parse_manifest
from vigil.errors import VigilError
from vigil.params import ValidateParams


@dataclass
class Input:
    name: str
    root: Path
    classes: list[str]
    records: list[dict[str, Any]]
    mode: str
    lines: list[int]  # manifest line of each record


@dataclass
class _Planned:
    src: Path
    rel: str
    labels: str | None  # remapped label file (None: the image has none, an unlabelled pool image)
    segs: str | None
    line: str


def parse_samples(pairs: list[str] | None, names: list[str], roots: list[Path]) -> dict[str, float]:
    """`NAME=RATIO` (name or path of an input) → {name: ratio in (0, 1]}."""
    out: dict[str, float] = {}
    for pair in pairs or []:
        key, sep, value = pair.rpartition("=")
        match = [n for n, r in zip(names, roots, strict=True) if key in (n, str(r), r.name)]
        if not sep or not match:
            raise VigilError(
                f"{pair!r} does not name an input as NAME=RATIO",
                field="--sample",
                hint=f"inputs: {', '.join(names)}",
            )
        try:
            ratio = float(value)
        except ValueError:
            raise VigilError(f"ratio {value!r} is not a number", field="--sample") from None
        if not 0 < ratio <= 1:
            raise VigilError(f"ratio {ratio} is not within (0, 1]", field="--sample")
        out[match[0]] = ratio
    return out


def _file(root: Path, rel: str, field: str) -> Path | None:
    """`root/rel` when it exists, after checking it resolves inside `root` and is a regular file; else None."""
    path = root / rel
    if not os.path.lexists(path):
        return None
    inside(root, path, Where(path), field)
    if not path.is_file():
        raise VigilError(
            "not a regular file", path=path, field=field, hint="replace it with the file itself"
        )
    return path


def _mode(root: Path) -> str:
    path = _file(root, MODE_CONFIG, "mode")
    if path is None:
        return "boxes"
    data = load_json(
        path, hint="a .mode_config.json written by `vigil data import`; or delete it (mode boxes)"
    )
    mode = data.get("mode") if isinstance(data, dict) else None
    if mode not in STUDENTS:
        raise VigilError(
            f"mode {mode!r} is not one of {sorted(STUDENTS)}",
            path=path,
            field="mode",
            hint="a .mode_config.json written by `vigil data import`; or delete it (mode boxes)",
        )
    return str(mode)


def _records(root: Path) -> tuple[list[dict[str, Any]], list[int]]:
    path = _file(root, MANIFEST, "manifest")
    if path is None:
        raise VigilError(
            "manifest.jsonl is missing",
            path=root / MANIFEST,
            hint="run `vigil data check` on the folder",
        )
    try:
        parsed = parse_manifest(path)
    except RecursionError:
        raise VigilError("a line is JSON nested too deep", path=path) from None
    if parsed.errors:
        line, message = parsed.errors[0]
        raise VigilError(message, path=path, line=line, hint="run `vigil data check` on this input")
    seen: dict[str, int] = {}
    for m in parsed.lines:
        image = m.record.get("image")
        if not isinstance(image, str) or not is_safe_relpath(image):
            raise VigilError(
                f"`image` {image!r} is missing or not a relative path",
                path=path,
                line=m.line,
                field="image",
                hint="every manifest line names its image, relative to the folder",
            )
        if image in seen:
            raise VigilError(
                f"image {image!r} is listed twice (line {seen[image]})",
                path=path,
                line=m.line,
                field="image",
            )
        seen[image] = m.line
        calibration = m.record.get("calibration")
        if calibration is not None and (
            not isinstance(calibration, str) or not is_safe_relpath(calibration)
        ):
            raise VigilError(
                f"`calibration` {calibration!r} is not a relative path",
                path=path,
                line=m.line,
                field="calibration",
            )
    return [m.record for m in parsed.lines], [m.line for m in parsed.lines]


def load_input(root: Path, taken: set[str]) -> Input:
    """One canonical input, read and checked whole; every file it names resolves inside it."""
    if not root.is_dir():
        raise VigilError("input folder not found", path=root)
    name = root.resolve().name or "dataset"
    base, k = name, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    classes = _file(root, CLASSES, "classes")
    if classes is None:
        raise VigilError(
            "classes.txt is missing", path=root / CLASSES, hint="write one class name per line"
        )
    mode = _mode(root)
    records, lines = _records(root)
    return Input(name, root, read_class_lines(classes), records, mode, lines)


def _remap(path: Path, ids: list[int]) -> str:
    """A label file with class ids renumbered to the merged classes.txt."""
    lines = []
    for number, text in enumerate(read_text(path).split("\n"), start=1):
        fields = text.split()
        if not fields:
            continue
        try:
            cls = int(fields[0])
            if cls < 0:
                raise IndexError(cls)
            lines.append(" ".join([str(ids[cls]), *fields[1:]]) + "\n")
        except (ValueError, IndexError):
            raise VigilError(
                f"class id {fields[0]!r} is not in classes.txt",
                path=path,
                line=number,
                field="class",
                hint="run `vigil data check` on this input",
            ) from None
    return "".join(lines)


def _calibration_files(root: Path) -> list[Path]:
    """Every file under calibration/, each resolving inside `root` (no symlink out, no loop)."""
    folder = root / "calibration"
    if not folder.is_dir():
        return []
    inside(root, folder, Where(folder), "calibration")
    files = []
    for base, dirs, names in os.walk(folder, followlinks=False):
        for entry in [*dirs, *names]:
            path = Path(base) / entry
            inside(root, path, Where(path), "calibration")
            if entry in names:
                files.append(path)
    return sorted(files)


def merge_datasets(
    roots: list[Path],
    out: Path,
    samples: list[str] | None,
    seed: int,
    validate: ValidateParams,
    force: bool = False,
    protect: list[Path] | None = None,
) -> Summary:
    """Check every input whole (files inside their folders, labels, images decoding), then write atomically.

    `protect`: the paths `out` may neither lie in nor hold (the inputs and params), checked again
    under the lock.
    """
    taken: set[str] = set()
    inputs = [load_input(Path(r), taken) for r in roots]
    ratios = parse_samples(samples, [i.name for i in inputs], [Path(r) for r in roots])
    classes = list(dict.fromkeys(c for i in inputs for c in i.classes))
    modes = {i.mode for i in inputs}
    mode = "boxes" if "boxes" in modes else "both"
    summary = Summary("merge", out, mode=mode, boxes=Counter({c: 0 for c in classes}))
    rng = np.random.default_rng(seed)
    plan: list[_Planned] = []
    extra: list[tuple[Path, str]] = []
    for inp in inputs:
        records = inp.records
        if inp.name in ratios:
            keep = sorted(
                rng.choice(len(records), size=round(len(records) * ratios[inp.name]), replace=False)
            )
            reason = f"not sampled from {inp.name} (--sample {ratios[inp.name]:g})"
            summary.skipped[reason] = len(records) - len(keep)
            records = [records[i] for i in keep]
        ids = [classes.index(c) for c in inp.classes]
        with steps(records, f"read {inp.name}", len(records)) as bar:
            for record in bar:
                image = record["image"]
                src = inside(inp.root, inp.root / image, Where(inp.root / MANIFEST), "image")
                if not src.is_file():
                    raise VigilError(
                        "image listed in manifest.jsonl does not exist",
                        path=inp.root / image,
                        field="image",
                        hint="run `vigil data check` on this input",
                    )
                rel = f"images/{inp.name}/{image.removeprefix('images/')}"
                label = _file(inp.root, label_rel_for(image), "label")
                labels = (
                    _remap(label, ids) if label is not None else None
                )  # an unlabelled pool image has none
                seg = _file(
                    inp.root,
                    SEGMENTS + "/" + label_rel_for(image).removeprefix("labels/"),
                    "segments",
                )
                segs = _remap(seg, ids) if mode != "boxes" and seg is not None else None
                if labels:
                    summary.boxes.update(
                        classes[int(line.split()[0])] for line in labels.splitlines()
                    )
                new = {
                    **record,
                    "image": rel,
                    "dataset": inp.name,
                    "merged_from": f"{inp.name}:{image}",
                }
                if isinstance(record.get("calibration"), str):
                    new["calibration"] = (
                        f"calibration/{inp.name}/{record['calibration'].removeprefix('calibration/')}"
                    )
                if isinstance(record.get("ignore"), list):
                    summary.ignored += len(record["ignore"])
                try:
                    line = json.dumps(new, sort_keys=True, allow_nan=False) + "\n"
                except (ValueError, TypeError, RecursionError) as exc:
                    raise VigilError(
                        f"the line cannot be written as JSON ({exc})",
                        path=inp.root / MANIFEST,
                        field="image",
                    ) from None
                plan.append(_Planned(src, rel, labels, segs, line))
        extra += [
            (f, f"calibration/{inp.name}/{f.relative_to(inp.root / 'calibration').as_posix()}")
            for f in _calibration_files(inp.root)
        ]
    if not plan:
        raise VigilError("the inputs hold no image to merge", path=roots[0] if roots else None)
    summary.images = len(plan)
    verify_images([(p.src, None) for p in plan], validate)
    provenance = json_text(
        {
            "merged": [
                {
                    "name": i.name,
                    "path": str(i.root.resolve()),
                    "images": len(i.records),
                    "sample": ratios.get(i.name),
                }
                for i in inputs
            ],
            "seed": seed,
            "summary": summary.as_dict(),
        },
        PROVENANCE,
    )
    with (
        writing(out, force, protect if protect is not None else list(roots)),
        atomic_dir(out) as tmp,
    ):
        with steps(plan, "merge", len(plan)) as bar:
            for item in bar:
                _copy(item.src, tmp / item.rel)
                if item.labels is not None:
                    _write(tmp / label_rel_for(item.rel), item.labels)
                if item.segs is not None:
                    _write(
                        tmp / SEGMENTS / label_rel_for(item.rel).removeprefix("labels/"), item.segs
                    )
        for src, rel in extra:
            _copy(src, tmp / rel)
        (tmp / MANIFEST).write_text("".join(p.line for p in plan), encoding="utf-8")
        (tmp / CLASSES).write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        (tmp / MODE_CONFIG).write_text(
            json_text(mode_config(mode, classes), MODE_CONFIG), encoding="utf-8"
        )
        (tmp / PROVENANCE).write_text(provenance, encoding="utf-8")
        (tmp / MARKER).write_text(json_text(marker("data merge"), MARKER), encoding="utf-8")
    return summary


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
