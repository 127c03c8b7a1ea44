"""The canonical dataset layout shared by `data/`, `vigil data check` and every importer.

```
images/…            the images (any subfolders)
labels/…/*.txt      YOLO boxes `class cx cy w h`, normalized; images/ → labels/, suffix → .txt
manifest.jsonl      one JSON object per image
classes.txt         one class name per line; line i = class id i
train.txt val.txt … optional split lists: one image path (relative to the folder) per line
```
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vigil.errors import VigilError

MANIFEST = "manifest.jsonl"
CLASSES = "classes.txt"
IMAGES = "images"
LABELS = "labels"
REQUIRED_FIELDS: tuple[str, ...] = (
    "image",
    "driver_id",
    "vehicle_id",
    "stream",
    "scenario",
    "road_type",
)
STRATA: tuple[str, ...] = ("stream", "scenario", "road_type")
GROUPS: tuple[str, ...] = ("driver_id", "vehicle_id")
SPLIT_LISTS: tuple[str, ...] = (
    "train.txt",
    "val.txt",
    "test.txt",
    "pool.txt",
)  # optional, at the root
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
)


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
    if any(ord(c) < 32 or ord(c) == 127 for c in rel):
        return (
            False  # a NUL or a control character is no file name (and NUL makes the OS calls raise)
        )
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    return ".." not in parts


def is_inside(root: Path, rel: str) -> bool:
    """`rel` is a safe relative path that also resolves (through symlinks) inside `root`."""
    if not is_safe_relpath(rel):
        return False
    try:
        base, target = root.resolve(), (root / rel).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return target == base / rel or base in target.parents


def resolve_inside(root: Path, rel: str) -> Path:
    """Resolve `rel` under `root`, refusing anything (a `..`, an absolute path, a symlink) that escapes it."""
    if not is_safe_relpath(rel):
        raise VigilError(
            f"path {rel!r} is absolute or climbs out with '..'",
            field="image",
            hint="use a path relative to the dataset folder",
        )
    base = root.resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise VigilError(
            f"path {rel!r} resolves outside the dataset folder ({target})",
            field="image",
            hint="keep every file inside the dataset folder; no symlinks out of it",
        )
    return target


def decode_lines(raw: bytes) -> list[tuple[int, str | None, str | None]]:
    """(line number, text, problem) per line of a UTF-8 text file; a line that is not UTF-8 gets a problem.

    Split on `\n` only (a trailing `\r` dropped), as every writer here writes: `str.splitlines` would also
    split on form feeds and Unicode line separators and shift the line numbers a reader sees.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[
            3:
        ]  # a UTF-8 byte-order mark (some editors add one) is not part of the first line
    out: list[tuple[int, str | None, str | None]] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        chunk = chunk[:-1] if chunk.endswith(b"\r") else chunk
        try:
            out.append((number, chunk.decode("utf-8"), None))
        except UnicodeDecodeError as exc:
            out.append(
                (number, None, f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)")
            )
    if out and out[-1][1] == "":
        out.pop()  # the newline that ends the last line starts no line
    return out


def read_text_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file; unreadable or not UTF-8 → a VigilError naming the line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise VigilError(f"cannot read the {what} ({exc.strerror or exc})", path=path) from None
    lines = []
    for number, text, problem in decode_lines(raw):
        if problem is not None:
            raise VigilError(problem, path=path, line=number, hint=f"save the {what} as UTF-8 text")
        lines.append((number, text or ""))
    return lines


def class_name_problem(name: str) -> str | None:
    """Why a class name cannot be a line of classes.txt (control characters shift class ids), or None."""
    bad = sorted(
        {c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\u200d"}
    )
    if bad:
        return f"class name {name!r} holds control characters ({', '.join(repr(c) for c in bad)})"
    return None


def read_classes(root: Path) -> list[str]:
    path = root / CLASSES
    if not path.is_file():
        raise VigilError("classes.txt is missing", path=path, hint="write one class name per line")
    lines = read_text_lines(path, "class list")
    names = [
        (number, text.strip(" ")) for number, text in lines
    ]  # a tab or form feed is not padding
    while names and not names[-1][1].strip():
        names.pop()
    seen: dict[str, int] = {}
    for number, name in names:
        if not name.strip():
            raise VigilError(
                "empty class name", path=path, line=number, hint="every line must name a class"
            )
        problem = class_name_problem(name)
        if problem:
            raise VigilError(
                problem, path=path, line=number, hint="a class name is printable text, one line"
            )
        if name in seen:
            raise VigilError(
                f"duplicate class name {name!r} (also line {seen[name]})",
                path=path,
                line=number,
                hint="class names must be unique",
            )
        seen[name] = number
    return [name for _, name in names]


def parse_manifest(path: Path) -> ParsedManifest:
    """Parse manifest.jsonl line by line; bad lines are reported, not fatal."""
    out = ParsedManifest()
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark is not part of the first line
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
        except RecursionError:
            out.errors.append((number, "JSON nested too deeply to read"))
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
        raise VigilError(
            "manifest.jsonl is missing", path=path, hint="run `vigil data check` on the folder"
        )
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
    for name, token in zip(("cx", "cy", "w", "h"), fields[1:], strict=True):
        try:
            values.append(float(token))
        except ValueError:
            raise ValueError(f"{name} {token!r} is not a number") from None
    return Box(int(cls_f), *values)


def read_labels(path: Path) -> list[Box]:
    """Strict read of one label file (after validation)."""
    boxes = []
    for number, text in read_text_lines(path, "label file"):
        if text.strip():
            try:
                boxes.append(parse_label_line(text))
            except ValueError as exc:
                raise VigilError(str(exc), path=path, line=number) from None
    return boxes


def split_list_entry(text: str) -> str | None:
    """The image path an ultralytics-style split list line names (`./` dropped), or None for a blank line."""
    entry = text.strip()
    while entry.startswith("./"):
        entry = entry[2:]
    return entry or None


def list_images(root: Path) -> list[str]:
    """Every file under images/ with an image suffix, as sorted POSIX paths relative to root."""
    base = root / IMAGES
    if not base.is_dir():
        return []
    return sorted(
        p.relative_to(root).as_posix()
        for p in base.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def list_label_files(root: Path) -> list[str]:
    base = root / LABELS
    if not base.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*.txt") if p.is_file())
