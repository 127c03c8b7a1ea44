"""Write a `SourceDataset` as a canonical folder, atomically, and say what was imported and what was not.

Everything is checked before the first byte is written: every image decodes by its content under the
same rules as `vigil data check` (`verify_images`), every copied file lies inside its source, every
output path stays inside `--out`, and no two images share an output or a label file.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.atomic import atomic_dir
from vigil.data.importers.common import (
    ClassMap,
    SourceDataset,
    SourceImage,
    Where,
    _aliases_by_name,
    class_name,
    inside,
    steps,
)
from vigil.data.importers.metadata import (
    MetadataIndex,
    load_metadata,
    manifest_fields,
    strata_warnings,
)
from vigil.data.importers.output import MARKER, PROVENANCE, marker, writing
from vigil.data.importers.segments import seg_line
from vigil.data.layout import CLASSES, MANIFEST, Box, is_safe_relpath, label_rel_for
from vigil.errors import VigilError
from vigil.params import ValidateParams

MODE_CONFIG = ".mode_config.json"
SEGMENTS = "segments"  # YOLO-seg polygon labels, same relative paths as labels/
STUDENTS: dict[str, dict[str, Any]] = {
    "boxes": {
        "task": "detect",
        "student": "yolo11n",
        "losses": ["box", "cls", "dfl"],
        "distill_losses": ["logit", "feature"],
    },
    "masks": {
        "task": "segment",
        "student": "yolo11n-seg",
        "losses": ["box", "cls", "dfl", "seg"],
        "distill_losses": ["logit", "feature", "mask"],
    },
}
STUDENTS["both"] = STUDENTS["masks"]


@dataclass
class ImportOptions:
    out: Path
    validate: ValidateParams  # image limits and allowed strata (params.yaml `validate`)
    class_map: ClassMap = field(default_factory=ClassMap)
    metadata: Path | None = None
    defaults: dict[str, str] = field(default_factory=dict)
    force: bool = False
    params: Path = Path("params.yaml")
    settings: dict[str, Any] = field(
        default_factory=dict
    )  # the command's own options, for provenance
    inputs: list[Path] = field(
        default_factory=list
    )  # every input: --out may neither lie in nor hold one


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
        lines = [
            f"imported {self.images} images ({self.format}, mode {self.mode}) into {self.out}",
            f"boxes: {sum(self.boxes.values())}",
        ]
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
        return {
            "format": self.format,
            "images": self.images,
            "mode": self.mode,
            "boxes": dict(self.boxes),
            "ignored_regions": self.ignored,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


def mode_config(mode: str, classes: list[str]) -> dict[str, Any]:
    return {
        "mode": mode,
        "num_classes": len(classes),
        "classes": dict(enumerate(classes)),
        **STUDENTS[mode],
    }


def _label_lines(
    image: SourceImage, ids: list[int | None], seg: bool
) -> tuple[list[str], list[str]]:
    boxes, segs = [], []
    for box, cls in zip(image.boxes, ids, strict=True):
        if cls is None:
            continue
        w, h = image.width, image.height
        boxes.append(
            Box(
                cls, (box.x + box.w / 2) / w, (box.y + box.h / 2) / h, box.w / w, box.h / h
            ).to_line()
        )
        if seg:
            segs.append(seg_line(cls, box.polygons, (box.x, box.y, box.w, box.h), w, h))
    return boxes, segs


def _objects(image: SourceImage, ids: list[int | None]) -> dict[str, list[Any]]:
    kept = [b for b, c in zip(image.boxes, ids, strict=True) if c is not None]
    keys = list(dict.fromkeys(k for b in kept for k in b.attrs))
    return {k: [b.attrs.get(k) for b in kept] for k in keys}


def _ignore(image: SourceImage) -> list[dict[str, Any]]:
    w, h = image.width, image.height
    return [
        {
            "box": [
                round((r.x + r.w / 2) / w, 6),
                round((r.y + r.h / 2) / h, 6),
                round(r.w / w, 6),
                round(r.h / h, 6),
            ],
            "reason": r.reason,
            **r.attrs,
        }
        for r in image.ignore
    ]


def verify_images(
    sources: Sequence[tuple[Path, tuple[int, int] | None]], validate: ValidateParams
) -> None:
    """Decode every image by its content, header size first: the rule of `vigil data check`, whole, before
    anything is written; the first bad image is refused.

    `sources` pairs each file with the size its reader saw (None: not read yet), so a file changed in
    between is refused too. Threads: decoding releases the GIL.
    """
    from vigil.data.image_inspection import require_image

    def one(item: tuple[Path, tuple[int, int] | None]) -> tuple[Path, tuple[int, int] | None, Any]:
        path, size = item
        info = require_image(
            path, max_side=validate.max_image_side, min_side=validate.min_image_side, field="image"
        )
        return path, size, info

    pool = ThreadPoolExecutor(max_workers=max(1, validate.workers))
    try:
        with steps(pool.map(one, sources), "decode images", len(sources)) as bar:
            for path, size, info in bar:
                if size is not None and (info.width, info.height) != size:
                    raise VigilError(
                        f"the image is {info.width}x{info.height}, not {size[0]}x{size[1]} as read before",
                        path=path,
                        field="image",
                        hint="run the import again once nothing writes the source",
                    )
    finally:
        pool.shutdown(
            wait=True, cancel_futures=True
        )  # on an error, report it without decoding the rest


def _check_outputs(ds: SourceDataset) -> None:
    """Every output path safe and unique (image and label), every copied file inside its source."""
    roots = ds.roots or ([ds.root] if ds.root.is_dir() else [])
    seen: dict[str, str] = {}
    for image in ds.images:
        where = Where(image.src)
        parts = image.rel.split("/")
        if not is_safe_relpath(image.rel) or parts[0] != "images" or len(parts) < 2 or "" in parts:
            raise where.error(
                f"output path {image.rel!r} would leave images/ in --out",
                "image",
                hint="rename the file; its name must be a relative path without '..'",
            )
        for rel in (image.rel, label_rel_for(image.rel)):
            if rel in seen:
                raise where.error(
                    f"this image and {seen[rel]} would both be written to {rel}",
                    "image",
                    hint="rename one of them (images differing only by suffix share a label file)",
                )
            seen[rel] = image.src_rel
        if roots:
            _inside_any(roots, image.src, where, "image")
    for src, rel in ds.extra_files:
        if (
            not is_safe_relpath(rel)
            or rel.split("/")[0] in ("images", "labels", SEGMENTS)
            or "/" not in rel
        ):
            raise VigilError(f"output path {rel!r} is not allowed", path=src)
        if roots:
            _inside_any(roots, src, Where(src), "file")


def _inside_any(roots: list[Path], path: Path, where: Where, field: str) -> None:
    errors = []
    for root in roots:
        try:
            inside(root, path, where, field)
            return
        except VigilError as exc:
            errors.append(exc)
    raise errors[0]


def _json_line(record: dict[str, Any], image: SourceImage) -> str:
    try:
        return json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
    except (ValueError, TypeError, RecursionError) as exc:
        raise VigilError(
            f"its manifest fields cannot be written as JSON ({exc})",
            path=image.src,
            field="fields",
            hint="fields must be plain JSON values (no NaN, not nested hundreds deep)",
        ) from None


@dataclass
class _Planned:
    image: SourceImage
    record: dict[str, Any]
    line: str
    boxes: list[str]
    segs: list[str]


def write_dataset(ds: SourceDataset, opts: ImportOptions, command: str | None = None) -> Summary:
    """Apply the class map and metadata, check everything, then write images/, labels/, manifest.jsonl,
    classes.txt, .mode_config.json, PROVENANCE.json and vigil's output marker atomically."""
    cmap = opts.class_map
    classes = cmap.classes(ds.classes, ds.aliases)
    if not classes:
        raise VigilError(
            "the class map drops every class",
            path=cmap.path,
            hint="map at least one class to a name",
        )
    for name in classes:
        class_name(name, Where(cmap.path or ds.root), "class")
    if not ds.images:
        raise VigilError(
            "the source holds no image to import",
            path=ds.root,
            hint="point at the folder (or file) that lists the images; nothing was written",
        )
    _check_outputs(ds)
    index = {name: i for i, name in enumerate(classes)}
    back = _aliases_by_name(ds.aliases)
    targets = {name: cmap.target(name, back.get(name, [])) for name in ds.classes}
    side = MetadataIndex(load_metadata(opts.metadata), ds.images, opts.metadata)
    summary = Summary(
        ds.format,
        opts.out,
        mode=ds.mode,
        skipped=dict(ds.skips.counts),
        examples=dict(ds.skips.examples),
        boxes=Counter({c: 0 for c in classes}),
    )
    seg = ds.mode != "boxes"
    plan: list[_Planned] = []
    for image in ds.images:
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
        record = {
            **manifest_fields(image, side.lookup(image), opts.defaults),
            "image": image.rel,
            "width": image.width,
            "height": image.height,
            "labelled": image.labelled,
            "source": f"{ds.format}:{image.src_rel}",
        }
        objects = _objects(image, ids)
        if objects:
            record["objects"] = objects
        if image.ignore:
            record["ignore"] = _ignore(image)
            summary.ignored += len(image.ignore)
        plan.append(_Planned(image, record, _json_line(record, image), box_lines, seg_lines))
    records = [p.record for p in plan]
    summary.images = len(records)
    summary.warnings += _warnings(ds, opts, side, records)
    provenance = json_text(
        {
            "importer": f"vigil data import {ds.format} (vigil {__version__})",
            "source": str(ds.root.resolve()),
            "settings": opts.settings,
            "class_map": {"file": str(cmap.path) if cmap.path else None, "targets": targets},
            "summary": summary.as_dict(),
            **ds.notes,
        },
        PROVENANCE,
    )
    verify_images([(i.src, (i.width, i.height)) for i in ds.images], opts.validate)
    with writing(opts.out, opts.force, opts.inputs), atomic_dir(opts.out) as tmp:
        with steps(plan, f"import {ds.format}", len(plan)) as bar:
            for item in bar:
                dest = tmp / item.image.rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item.image.src, dest)
                if not item.image.labelled:  # an unlabelled image has no label file (check's rule)
                    continue
                _write_lines(tmp / label_rel_for(item.image.rel), item.boxes)
                if seg:
                    _write_lines(
                        tmp / SEGMENTS / label_rel_for(item.image.rel).removeprefix("labels/"),
                        item.segs,
                    )
        for src, rel in ds.extra_files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / rel)
        (tmp / MANIFEST).write_text("".join(p.line for p in plan), encoding="utf-8")
        (tmp / CLASSES).write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        (tmp / MODE_CONFIG).write_text(
            json_text(mode_config(ds.mode, classes), MODE_CONFIG), encoding="utf-8"
        )
        (tmp / PROVENANCE).write_text(provenance, encoding="utf-8")
        (tmp / MARKER).write_text(
            json_text(marker(command or f"data import {ds.format}"), MARKER), encoding="utf-8"
        )
    return summary


def _warnings(
    ds: SourceDataset, opts: ImportOptions, side: MetadataIndex, records: list[dict[str, Any]]
) -> list[str]:
    out = []
    unused = opts.class_map.unused_keys(ds.classes, ds.aliases)
    if unused:
        out.append(f"class map keys {unused} match no source class (source classes: {ds.classes})")
    if side.unused():
        out.append(
            f"{len(side.unused())} --metadata rows match no imported image, e.g. {side.unused()[:3]}"
        )
    return out + strata_warnings(records, opts.validate.allowed, opts.params)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def json_text(obj: Any, name: str) -> str:
    """Indented, sorted JSON; a value JSON cannot carry (NaN, nesting too deep) is refused before writing."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON source: keep it, \u-escaped
            text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
        return text
    except (ValueError, TypeError, RecursionError) as exc:
        raise VigilError(
            f"cannot be written as JSON ({exc})",
            path=name,
            hint="a source field holds NaN or is nested too deep",
        ) from None
