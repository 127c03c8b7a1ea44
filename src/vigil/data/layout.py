"""The canonical dataset layout shared by `data/`, `vigil data check` and every importer.

```
images/…            the images (any subfolders)
labels/…/*.txt      YOLO boxes `class cx cy w h`, normalized; images/ → labels/, suffix → .txt
manifest.jsonl      one JSON object per image
classes.txt         one class name per line; line i = class id i
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vigil.errors import VigilError

MANIFEST = "manifest.jsonl"
CLASSES = "classes.txt"
IMAGES = "images"
LABELS = "labels"
REQUIRED_FIELDS: tuple[str, ...] = ("image", "driver_id", "vehicle_id", "stream", "scenario", "road_type")
STRATA: tuple[str, ...] = ("stream", "scenario", "road_type")
GROUPS: tuple[str, ...] = ("driver_id", "vehicle_id")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Box:
    """One YOLO box, normalized to the image size."""

    cls: int
    cx: float
    cy: float
    w: float
    h: float

    def to_line(self) -> str:
        return f"{self.cls} {self.cx:.6f} {self.cy:.6f} {self.w:.6f} {self.h:.6f}"


@dataclass
class ManifestLine:
    """A manifest line that parsed as a JSON object (its fields are checked later)."""

    line: int
    record: dict[str, Any]


@dataclass
class ParsedManifest:
    lines: list[ManifestLine] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


def label_rel_for(image_rel: str) -> str:
    """`images/a/b.jpg` → `labels/a/b.txt` (ultralytics' rule: the last `images` part becomes `labels`)."""
    parts = list(PurePosixPath(image_rel).parts)
    if IMAGES in parts:
        idx = len(parts) - 1 - parts[::-1].index(IMAGES)
        parts[idx] = LABELS
    else:
        parts.insert(0, LABELS)
    return str(PurePosixPath(*parts).with_suffix(".txt"))


def is_safe_relpath(rel: str) -> bool:
    """A manifest path must be relative, use no `..`, and name no drive or home folder."""
    if not rel or rel.startswith(("/", "\\", "~")) or ":" in rel.split("/")[0]:
        return False
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    return ".." not in parts


def resolve_inside(root: Path, rel: str) -> Path:
    """Resolve `rel` under `root`, refusing anything (a `..`, an absolute path, a symlink) that escapes it."""
    if not is_safe_relpath(rel):
        raise VigilError(f"path {rel!r} is absolute or climbs out with '..'", field="image",
                         hint="use a path relative to the dataset folder")
    base = root.resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise VigilError(f"path {rel!r} resolves outside the dataset folder ({target})", field="image",
                         hint="keep every file inside the dataset folder; no symlinks out of it")
    return target


def read_classes(root: Path) -> list[str]:
    path = root / CLASSES
    if not path.is_file():
        raise VigilError("classes.txt is missing", path=path, hint="write one class name per line")
    names = [n.strip() for n in path.read_text(encoding="utf-8").splitlines()]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names, start=1):
        if not name:
            raise VigilError("empty class name", path=path, line=i, hint="every line must name a class")
    if len(set(names)) != len(names):
        raise VigilError("duplicate class names", path=path, hint="class names must be unique")
    return names


def parse_manifest(path: Path) -> ParsedManifest:
    """Parse manifest.jsonl line by line; bad lines are reported, not fatal."""
    out = ParsedManifest()
    raw = path.read_bytes()
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if not chunk.strip():
            continue
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.errors.append((number, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            out.errors.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(record, dict):
            out.errors.append((number, f"a JSON {type(record).__name__}, not an object"))
            continue
        out.lines.append(ManifestLine(number, record))
    return out


def read_manifest(root: Path) -> list[dict[str, Any]]:
    """Strict read for stages that run after validation: any bad line is an error."""
    path = root / MANIFEST
    if not path.is_file():
        raise VigilError("manifest.jsonl is missing", path=path, hint="run `vigil data check` on the folder")
    parsed = parse_manifest(path)
    if parsed.errors:
        line, message = parsed.errors[0]
        raise VigilError(message, path=path, line=line, hint="run `vigil data check` on the folder")
    return [m.record for m in parsed.lines]


def parse_label_line(text: str) -> Box:
    """Parse one `class cx cy w h` line; raises ValueError with the reason."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields, expected 5 (class cx cy w h)")
    try:
        cls_f = float(fields[0])
    except ValueError:
        raise ValueError(f"class id {fields[0]!r} is not a number") from None
    if not cls_f.is_integer():
        raise ValueError(f"class id {fields[0]!r} is not an integer")
    values = []
    for name, token in zip(("cx", "cy", "w", "h"), fields[1:]):
        try:
            values.append(float(token))
        except ValueError:
            raise ValueError(f"{name} {token!r} is not a number") from None
    return Box(int(cls_f), *values)


def read_labels(path: Path) -> list[Box]:
    """Strict read of one label file (after validation)."""
    boxes = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text.strip():
            try:
                boxes.append(parse_label_line(text))
            except ValueError as exc:
                raise VigilError(str(exc), path=path, line=number) from None
    return boxes


def list_images(root: Path) -> list[str]:
    """Every file under images/ with an image suffix, as sorted POSIX paths relative to root."""
    base = root / IMAGES
    if not base.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_label_files(root: Path) -> list[str]:
    base = root / LABELS
    if not base.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*.txt") if p.is_file())
