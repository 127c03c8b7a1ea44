"""Write a `SourceDataset` as a canonical folder, atomically, and say what was imported and what was not."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.atomic import atomic_dir
from vigil.data.importers.common import ClassMap, SourceDataset, SourceImage, _aliases_by_name
from vigil.data.importers.metadata import MetadataIndex, load_metadata, manifest_fields, strata_warnings
from vigil.data.importers.segments import seg_line
from vigil.data.layout import CLASSES, MANIFEST, Box, label_rel_for
from vigil.errors import VigilError
from vigil.progress import progress

MODE_CONFIG = ".mode_config.json"
PROVENANCE = "PROVENANCE.json"
SEGMENTS = "segments"  # YOLO-seg polygon labels, same relative paths as labels/
STUDENTS: dict[str, dict[str, Any]] = {
    "boxes": {"task": "detect", "student": "yolo11n", "losses": ["box", "cls", "dfl"],
              "distill_losses": ["logit", "feature"]},
    "masks": {"task": "segment", "student": "yolo11n-seg", "losses": ["box", "cls", "dfl", "seg"],
              "distill_losses": ["logit", "feature", "mask"]},
}
STUDENTS["both"] = STUDENTS["masks"]


@dataclass
class ImportOptions:
    out: Path
    class_map: ClassMap = field(default_factory=ClassMap)
    metadata: Path | None = None
    defaults: dict[str, str] = field(default_factory=dict)
    force: bool = False
    params: Path = Path("params.yaml")
    settings: dict[str, Any] = field(default_factory=dict)  # the command's own options, for provenance


@dataclass
class Summary:
    format: str
    out: Path
    images: int = 0
    boxes: Counter[str] = field(default_factory=Counter)
    ignored: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    mode: str = "boxes"

    def render(self) -> str:
        lines = [f"imported {self.images} images ({self.format}, mode {self.mode}) into {self.out}",
                 f"boxes: {sum(self.boxes.values())}"]
        lines += [f"  {name}: {n}" for name, n in self.boxes.items()]
        if self.ignored:
            lines.append(f"regions kept out of labels (manifest `ignore`): {self.ignored}")
        if self.skipped:
            lines.append("skipped:")
            for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
                eg = "; ".join(self.examples.get(reason, []))
                lines.append(f"  {n} × {reason}" + (f"  (e.g. {eg})" if eg else ""))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "images": self.images, "mode": self.mode, "boxes": dict(self.boxes),
                "ignored_regions": self.ignored, "skipped": self.skipped, "warnings": self.warnings}


def check_out(out: Path, force: bool, sources: list[Path]) -> None:
    """Refuse to replace a non-empty folder without --force, or to write inside a source."""
    out_r = out.resolve()
    for src in sources:
        src_r = src.resolve()
        if out_r == src_r or src_r in out_r.parents:
            raise VigilError(f"--out {out} lies inside the source {src}", field="--out",
                             hint="write the canonical dataset somewhere outside the source folder")
    if out.exists() and not out.is_dir():
        raise VigilError("--out exists and is not a folder", path=out, field="--out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise VigilError("--out is not empty", path=out, field="--out",
                         hint="choose a new folder, or pass --force to replace it whole")


def mode_config(mode: str, classes: list[str]) -> dict[str, Any]:
    return {"mode": mode, "num_classes": len(classes), "classes": dict(enumerate(classes)), **STUDENTS[mode]}


def _label_lines(image: SourceImage, ids: list[int | None], seg: bool) -> tuple[list[str], list[str]]:
    boxes, segs = [], []
    for box, cls in zip(image.boxes, ids):
        if cls is None:
            continue
        w, h = image.width, image.height
        boxes.append(Box(cls, (box.x + box.w / 2) / w, (box.y + box.h / 2) / h, box.w / w, box.h / h).to_line())
        if seg:
            segs.append(seg_line(cls, box.polygons, (box.x, box.y, box.w, box.h), w, h))
    return boxes, segs


def _objects(image: SourceImage, ids: list[int | None]) -> dict[str, list[Any]]:
    kept = [b for b, c in zip(image.boxes, ids) if c is not None]
    keys = list(dict.fromkeys(k for b in kept for k in b.attrs))
    return {k: [b.attrs.get(k) for b in kept] for k in keys}


def _ignore(image: SourceImage) -> list[dict[str, Any]]:
    w, h = image.width, image.height
    return [{"box": [round((r.x + r.w / 2) / w, 6), round((r.y + r.h / 2) / h, 6), round(r.w / w, 6),
                     round(r.h / h, 6)], "reason": r.reason, **r.attrs} for r in image.ignore]


def write_dataset(ds: SourceDataset, opts: ImportOptions) -> Summary:
    """Apply the class map and metadata, then write images/, labels/, manifest.jsonl, classes.txt atomically."""
    cmap = opts.class_map
    classes = cmap.classes(ds.classes, ds.aliases)
    if not classes:
        raise VigilError("the class map drops every class", path=cmap.path, hint="map at least one class to a name")
    index = {name: i for i, name in enumerate(classes)}
    back = _aliases_by_name(ds.aliases)
    targets = {name: cmap.target(name, back.get(name, [])) for name in ds.classes}
    side = MetadataIndex(load_metadata(opts.metadata), ds.images, opts.metadata)
    summary = Summary(ds.format, opts.out, mode=ds.mode, skipped=dict(ds.skips.counts),
                      examples=dict(ds.skips.examples), boxes=Counter({c: 0 for c in classes}))
    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    seg = ds.mode != "boxes"
    with atomic_dir(opts.out) as tmp:
        for image in progress(ds.images, desc=f"import {ds.format}", total=len(ds.images)):
            if image.rel in seen:
                raise VigilError(f"two source images map to {image.rel}", path=image.src, field="image",
                                 hint="rename one of them")
            seen.add(image.rel)
            ids: list[int | None] = []
            for box in image.boxes:
                target = targets.get(box.cls, box.cls)
                if target is None:
                    reason = f"class {box.cls!r} dropped by the class map"
                    summary.skipped[reason] = summary.skipped.get(reason, 0) + 1
                    summary.examples.setdefault(reason, [image.src_rel])
                    ids.append(None)
                else:
                    ids.append(index[target])
                    summary.boxes[target] += 1
            box_lines, seg_lines = _label_lines(image, ids, seg)
            dest = tmp / image.rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image.src, dest)
            _write_lines(tmp / label_rel_for(image.rel), box_lines)
            if seg:
                _write_lines(tmp / SEGMENTS / label_rel_for(image.rel).removeprefix("labels/"), seg_lines)
            record = {"image": image.rel, **manifest_fields(image, side.lookup(image), opts.defaults),
                      "width": image.width, "height": image.height, "labelled": True,
                      "source": f"{ds.format}:{image.src_rel}"}
            objects = _objects(image, ids)
            if objects:
                record["objects"] = objects
            if image.ignore:
                record["ignore"] = _ignore(image)
                summary.ignored += len(image.ignore)
            records.append(record)
        for src, rel in ds.extra_files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / rel)
        summary.images = len(records)
        summary.warnings += _warnings(ds, opts, side, records)
        (tmp / MANIFEST).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
        (tmp / CLASSES).write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        _write_json(tmp / MODE_CONFIG, mode_config(ds.mode, classes))
        _write_json(tmp / PROVENANCE, {
            "importer": f"vigil data import {ds.format} (vigil {__version__})", "source": str(ds.root.resolve()),
            "settings": opts.settings, "class_map": {"file": str(cmap.path) if cmap.path else None,
                                                    "targets": targets},
            "summary": summary.as_dict(), **ds.notes})
    return summary


def _warnings(ds: SourceDataset, opts: ImportOptions, side: MetadataIndex, records: list[dict[str, Any]]) -> list[str]:
    out = []
    unused = opts.class_map.unused_keys(ds.classes, ds.aliases)
    if unused:
        out.append(f"class map keys {unused} match no source class (source classes: {ds.classes})")
    if side.unused():
        out.append(f"{len(side.unused())} --metadata rows match no imported image, e.g. {side.unused()[:3]}")
    return out + strata_warnings(records, opts.params)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
