"""ImageFolder classifier data (`ROOT/<sku>/…/*.jpg`, one folder per class) → a sibling classifier layout.

A classifier's data has no boxes, so it is not forced into the detection layout (empty label files would
read as "no object here"). It gets its own layout beside it, with the same trust rules as every importer:

    classes.txt          the class (SKU) folder names in codepoint order (`sorted`, ImageFolder's order):
                         line i is class id i
    images/<sku>/<rel>   byte copies of the source images (<rel>: the path inside the SKU folder)
    manifest.jsonl       one row per image: image, class, class_id, width, height, sha256, group, source,
                         plus any --metadata fields
    .mode_config.json    mode/task `classify`: a detection tool (`vigil data merge`) refuses the folder
    PROVENANCE.json      importer, source, options, the summary
    .vigil-output.json   vigil's marker: the folder `--force` may replace

Every subfolder of ROOT is a class, named exactly by its folder; a SKU folder is read recursively.
Entries whose name starts with `.` (`.DS_Store`, `.ipynb_checkpoints/`), files directly in ROOT and
files without an image suffix are skipped and counted in the summary, as the other importers pass
over stray files; a file with an image suffix that does not decode is refused. Refused, naming the
file: a name holding control characters, a link out of ROOT, a linked folder (it would be followed
nowhere else), a pipe or device, an empty SKU folder, a ROOT without SKU folders, an image failing the
`vigil data check` rule (`require_image`), and the same bytes (sha256) in two SKU folders (a label
leak: one picture, two classes). The same bytes twice in one SKU folder is a warning. Coverage is a
warning per SKU below `--min-per-class`, as coverage is in `vigil data check`.

`group` keeps instances apart in a later split: the first capture group (else the whole match) of
`--group-by REGEX` searched in the path inside the SKU folder (every image must match), else the
image itself (its source path without suffix); a `--metadata` row's `group` wins over both.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.atomic import atomic_dir
from vigil.data.importers import DEFAULT_MIN_PER_CLASS
from vigil.data.importers.common import (
    Skips,
    SourceImage,
    Where,
    check_tree,
    class_name,
    inside,
    steps,
)
from vigil.data.importers.metadata import MetadataIndex, load_metadata
from vigil.data.importers.output import MARKER, PROVENANCE, marker, writing
from vigil.data.importers.writer import MODE_CONFIG, json_text
from vigil.data.layout import CLASSES, IMAGE_SUFFIXES, MANIFEST, is_safe_relpath
from vigil.errors import VigilError
from vigil.params import ValidateParams

FORMAT = "imagefolder"
HIDDEN = "hidden file or folder (name starts with '.')"
ROOT_FILE = "file directly in the source root (in no SKU folder)"
NOT_IMAGE = f"not an image file (suffix not one of {' '.join(sorted(IMAGE_SUFFIXES))})"


@dataclass
class SkuImage:
    src: Path  # the file to copy (resolved inside the source)
    rel: str  # output path, images/<sku>/<inner>
    src_rel: str  # <sku>/<inner>, as the source names it
    sku: str
    class_id: int
    group: str
    width: int = 0
    height: int = 0
    sha256: str = ""


@dataclass
class ImageFolderSource:
    root: Path
    classes: list[str]
    images: list[SkuImage]
    skips: Skips = field(default_factory=Skips)


@dataclass
class ClassifierSummary:
    out: Path
    per_class: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"imported {sum(self.per_class.values())} images ({FORMAT}, classifier layout) "
            f"into {self.out}",
            f"classes: {len(self.per_class)}",
        ]
        lines += [f"  {name}: {n}" for name, n in self.per_class.items()]
        if self.skipped:
            lines.append("skipped:")
            for reason, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
                eg = "; ".join(self.examples.get(reason, []))
                lines.append(f"  {n} × {reason}" + (f"  (e.g. {eg})" if eg else ""))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "images": sum(self.per_class.values()),
            "per_class": self.per_class,
            "skipped": self.skipped,
            "warnings": self.warnings,
        }


def _name_problem(name: str) -> str | None:
    """A file or folder name vigil will not carry into a manifest: control characters (the categories
    `layout.class_name_problem` refuses) or bytes that are not UTF-8 (lone surrogates)."""
    bad = ("Cc", "Cf", "Cs", "Zl", "Zp")
    if any(unicodedata.category(c) in bad and c != "\u200d" for c in name):
        return f"the name {name!r} holds control characters or bytes that are not UTF-8"
    return None


def _walk(root: Path) -> list[tuple[Path, bool]]:
    """Every entry under `root` (links not followed), sorted, each as (path, is a linked folder); a bad
    name is refused first, so no later message prints a line break out of a file name."""
    found: list[tuple[Path, bool]] = []

    def fail(exc: OSError) -> None:
        raise exc  # an unreadable folder is an error (`output.file_errors` names it), not skipped

    for base, dirs, files in os.walk(root, followlinks=False, onerror=fail):
        dirs.sort()
        for name in [*dirs, *sorted(files)]:
            path = Path(base) / name
            problem = _name_problem(name)
            if problem is not None:
                raise VigilError(
                    problem,
                    path=Path(base),
                    field="name",
                    hint="rename it to one line of printable text (UTF-8)",
                )
            found.append((path, path.is_symlink() and path.is_dir()))
    return found


def _sku_name(folder: Path) -> str:
    name = class_name(folder.name, Where(folder), "class")
    if name != folder.name:
        raise VigilError(
            f"SKU folder name {folder.name!r} starts or ends with white space",
            path=folder,
            field="class",
            hint="rename the folder: its name is the class name in classes.txt",
        )
    return name


def _group(pattern: re.Pattern[str] | None, inner: str, src_rel: str, path: Path) -> str:
    if pattern is None:
        return str(Path(src_rel).with_suffix(""))
    match = pattern.search(inner)
    key = None if match is None else (match.group(1) if pattern.groups else match.group(0))
    if not key:
        raise VigilError(
            f"--group-by {pattern.pattern!r} "
            + ("does not match" if match is None else "captures nothing in")
            + f" {inner!r}",
            path=path,
            field="--group-by",
            hint="every image needs a group: fix the pattern (searched in the path inside the SKU "
            "folder; its first group is the key) or rename the file",
        )
    return key


def compile_group_by(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise VigilError(
            f"{text!r} is not a regular expression ({exc})",
            field="--group-by",
            hint=r"e.g. --group-by '^(.+)_\d+\.\w+$' (the name before the last _NUMBER)",
        ) from None


def read_imagefolder(src: Path, group_by: re.Pattern[str] | None = None) -> ImageFolderSource:
    """List and name-check the SKU folders and their images (no pixel read yet); every file resolves
    inside `src`."""
    src = Path(src)
    if not src.is_dir():
        raise VigilError(
            "not a folder", path=src, hint="expected one folder per SKU holding its images"
        )
    entries = _walk(src)
    check_tree(src, src, "image")  # links out of src, loops, pipes and devices: refused, named
    linked = [p for p, is_link in entries if is_link]
    if linked:
        raise VigilError(
            "a linked folder is not followed",
            path=linked[0],
            field="image",
            hint="copy the folder in instead of linking it",
        )
    skips = Skips()
    skus: list[Path] = []
    for path in sorted(src.iterdir()):
        if path.name.startswith("."):
            skips.add(HIDDEN, path.name)
        elif path.is_dir():
            skus.append(path)
        else:
            skips.add(ROOT_FILE, path.name)
    if not skus:
        raise VigilError(
            "no SKU folders: an ImageFolder source holds one folder per class",
            path=src,
            hint="point at the folder holding sku_<name>/ folders; nothing was written",
        )
    classes = sorted(_sku_name(folder) for folder in skus)
    by_sku: dict[str, list[tuple[Path, str]]] = {sku: [] for sku in classes}
    for path, _ in entries:
        top, _, inner = path.relative_to(src).as_posix().partition("/")
        if top in by_sku and inner:
            by_sku[top].append((path, inner))
    images: list[SkuImage] = []
    for class_id, sku in enumerate(classes):
        found = 0
        for path, inner in sorted(by_sku[sku], key=lambda e: e[1]):  # by path inside the folder
            src_rel = f"{sku}/{inner}"
            if any(part.startswith(".") for part in inner.split("/")):
                if path.name.startswith("."):  # counted once, not once per file inside
                    skips.add(HIDDEN, src_rel)
                continue
            if path.is_dir():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skips.add(NOT_IMAGE, src_rel)
                continue
            if not path.is_file():  # `check_tree`'s rule again: a pipe here would block the read
                raise VigilError(
                    "not a regular file (a pipe, socket, device or broken link)",
                    path=path,
                    field="image",
                    hint="replace it with the file itself, or remove it",
                )
            rel = f"images/{src_rel}"
            if not is_safe_relpath(rel):
                raise VigilError(f"output path {rel!r} is not allowed", path=path, field="image")
            real = inside(src, path, Where(path), "image")
            images.append(
                SkuImage(real, rel, src_rel, sku, class_id, _group(group_by, inner, src_rel, path))
            )
            found += 1
        if not found:
            raise VigilError(
                "SKU folder holds no image",
                path=src / sku,
                field="class",
                hint="add its images or remove the folder (an empty class cannot be trained)",
            )
    return ImageFolderSource(src, classes, images, skips)


def decode_images(images: list[SkuImage], validate: ValidateParams) -> None:
    """Every image judged by `vigil data check`'s rule (`require_image`: header size before decoding,
    decode by content, min side), in order, before anything is written; the first bad one is refused."""
    from vigil.data.image_inspection import require_image

    def one(image: SkuImage) -> tuple[SkuImage, Any]:
        return image, require_image(
            image.src,
            max_side=validate.max_image_side,
            min_side=validate.min_image_side,
            field="image",
        )

    pool = ThreadPoolExecutor(max_workers=max(1, validate.workers))
    try:
        with steps(pool.map(one, images), "decode images", len(images)) as bar:
            for image, info in bar:
                image.width, image.height, image.sha256 = info.width, info.height, info.sha256
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def duplicate_warnings(images: list[SkuImage]) -> list[str]:
    """The same bytes in two SKU folders is refused (one picture, two labels); in one folder, a warning."""
    first: dict[str, SkuImage] = {}
    repeats: list[str] = []
    for image in images:
        seen = first.setdefault(image.sha256, image)
        if seen is image:
            continue
        if seen.sku != image.sku:
            raise VigilError(
                f"the same image (sha256 {image.sha256[:12]}…) is in two SKU folders: "
                f"{seen.src_rel} and {image.src_rel}",
                path=image.src,
                field="image",
                hint="one picture can have one class: remove the wrong copy",
            )
        repeats.append(f"{image.src_rel} = {seen.src_rel}")
    if not repeats:
        return []
    return [
        f"{len(repeats)} images repeat another image of the same SKU byte for byte "
        f"(e.g. {'; '.join(repeats[:3])}); a split may put the copies on both sides"
    ]


def coverage_warnings(per_class: dict[str, int], minimum: int) -> list[str]:
    """One warning per SKU with fewer images than `minimum` (coverage is a warning, as in `vigil data check`)."""
    return [
        f"coverage: SKU {sku} has {n} images, below --min-per-class {minimum}; add images or "
        f"lower --min-per-class"
        for sku, n in per_class.items()
        if n < minimum
    ]


def _records(ds: ImageFolderSource, metadata: Path | None) -> tuple[list[str], list[str]]:
    """Manifest lines (JSON, sorted keys) and the warnings about --metadata rows that match nothing."""
    stand_ins = [
        SourceImage(i.src, i.rel, i.src_rel, i.width, i.height, i.group) for i in ds.images
    ]
    side = MetadataIndex(load_metadata(metadata), stand_ins, metadata)
    lines = []
    for image, stand_in in zip(ds.images, stand_ins, strict=True):
        record = {  # a side row may give `group` and any other field; the importer's own come last
            "group": image.group,
            **side.lookup(stand_in),
            "image": image.rel,
            "class": image.sku,
            "class_id": image.class_id,
            "width": image.width,
            "height": image.height,
            "sha256": image.sha256,
            "source": f"{FORMAT}:{image.src_rel}",
        }
        record["group"] = str(record["group"])
        try:
            lines.append(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
        except (ValueError, TypeError) as exc:
            raise VigilError(
                f"its manifest fields cannot be written as JSON ({exc})",
                path=metadata,
                field=image.src_rel,
            ) from None
    unused = side.unused()
    warnings = (
        [f"{len(unused)} --metadata rows match no imported image, e.g. {unused[:3]}"]
        if unused
        else []
    )
    return lines, warnings


def mode_config(classes: list[str]) -> dict[str, Any]:
    return {
        "mode": "classify",
        "task": "classify",
        "layout": "classifier",
        "num_classes": len(classes),
        "classes": dict(enumerate(classes)),
    }


def _copy_checked(image: SkuImage, dest: Path) -> None:
    """Copy the bytes that were checked: a file changed since its decode is refused, not copied."""
    data = image.src.read_bytes()
    if hashlib.sha256(data).hexdigest() != image.sha256:
        raise VigilError(
            "the file changed after it was checked",
            path=image.src,
            field="image",
            hint="run the import again once nothing writes the source",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def import_imagefolder(
    src: Path,
    out: Path,
    *,
    validate: ValidateParams,
    group_by: str | None = None,
    metadata: Path | None = None,
    min_per_class: int = DEFAULT_MIN_PER_CLASS,
    force: bool = False,
    inputs: list[Path] | None = None,
    settings: dict[str, Any] | None = None,
) -> ClassifierSummary:
    """Read and check `src` whole, then write the classifier layout into `out` (resolved, checked by
    `output.prepare_out`) atomically, under its lock."""
    ds = read_imagefolder(src, compile_group_by(group_by))
    decode_images(ds.images, validate)
    summary = ClassifierSummary(
        out,
        {sku: sum(i.sku == sku for i in ds.images) for sku in ds.classes},
        skipped=dict(ds.skips.counts),
        examples=dict(ds.skips.examples),
    )
    summary.warnings += duplicate_warnings(ds.images)
    lines, side_warnings = _records(ds, metadata)
    summary.warnings += side_warnings + coverage_warnings(summary.per_class, min_per_class)
    provenance = json_text(
        {
            "importer": f"vigil data import {FORMAT} (vigil {__version__})",
            "layout": "classifier",
            "source": str(ds.root.resolve()),
            "settings": settings or {},
            "summary": summary.as_dict(),
        },
        PROVENANCE,
    )
    with writing(out, force, inputs or [src]), atomic_dir(out) as tmp:
        with steps(ds.images, f"import {FORMAT}", len(ds.images)) as bar:
            for image in bar:
                _copy_checked(image, tmp / image.rel)
        (tmp / MANIFEST).write_text("".join(lines), encoding="utf-8")
        (tmp / CLASSES).write_text("".join(c + "\n" for c in ds.classes), encoding="utf-8")
        (tmp / MODE_CONFIG).write_text(
            json_text(mode_config(ds.classes), MODE_CONFIG), encoding="utf-8"
        )
        (tmp / PROVENANCE).write_text(provenance, encoding="utf-8")
        (tmp / MARKER).write_text(
            json_text(marker(f"data import {FORMAT}"), MARKER), encoding="utf-8"
        )
    return summary
