"""What every importer shares: the source records, box checks, image headers, paths, text and the class map.

The trust rule of every importer: a source is data, never instructions. Every path it names and
every file an import reads resolves inside the source's own folder (`inside`, `named_path`), text is
UTF-8 (`read_text`), and a class name is one line of printable text (`class_name`).
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from PIL import Image, UnidentifiedImageError

from vigil.data.layout import class_name_problem, is_safe_relpath
from vigil.errors import VigilError
from vigil.progress import progress

T = TypeVar("T")

EDGE_TOLERANCE_PX = (
    1.0  # a box may stick out of the image this far (rounding); it is clipped, never refused
)
CLIP_HINT = "fix the annotation, or pass --clip to clip boxes that stick out of the image"
# real COCO/VisDrone hold a few: skipped, not refused
ZERO_SIZE = "box of zero width or height (not labelled)"


@contextmanager
def steps(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[Iterator[T]]:
    """`vigil.progress.progress`, closed on the way out: an error prints after the bar, on its own line."""
    bar = progress(items, desc=desc, total=total)
    try:
        yield bar
    finally:
        close = getattr(bar, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class Where:
    """Where a record came from, so an error can name the file, the line or annotation id, and the field."""

    path: Path
    line: int | None = None
    item: str | None = None  # e.g. "annotation id=17", "object 2", "detections[4]"

    def error(self, message: str, field: str | None = None, hint: str | None = None) -> VigilError:
        name = " ".join(p for p in (self.item, field) if p) or None
        return VigilError(message, path=self.path, line=self.line, field=name, hint=hint)

    def __str__(self) -> str:
        text = str(self.path) + (f":{self.line}" if self.line is not None else "")
        return f"{text} ({self.item})" if self.item else text


@dataclass
class SourceBox:
    """One object in pixels (0-based edges: x0 = x, x1 = x + w), with the source class name."""

    cls: str
    x: float
    y: float
    w: float
    h: float
    attrs: dict[str, Any] = field(
        default_factory=dict
    )  # per-object fields kept in the manifest `objects`
    polygons: list[list[float]] | None = None  # mask outline(s) in pixels, for YOLO-seg labels


@dataclass
class IgnoreRegion:
    """A region kept out of training labels but recorded (COCO iscrowd, VisDrone ignored, low confidence)."""

    x: float
    y: float
    w: float
    h: float
    reason: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceImage:
    src: Path  # the image file to copy
    rel: str  # output path, `images/…`
    src_rel: str  # path as the source names it (provenance, metadata lookup)
    width: int
    height: int
    group: str  # default driver_id / vehicle_id when nothing else gives them
    boxes: list[SourceBox] = field(default_factory=list)
    ignore: list[IgnoreRegion] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # manifest fields the source itself gives
    labelled: bool = (
        True  # False: no label file, `labelled: false` (the pool), e.g. no detector ran on it
    )


class Skips:
    """Items left out of the labels, counted by reason with a few examples (for the summary)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, where: Where | str, n: int = 1) -> None:
        self.counts[reason] += n
        examples = self.examples.setdefault(reason, [])
        if len(examples) < 3:
            examples.append(str(where))


@dataclass
class SourceDataset:
    format: str
    root: Path
    images: list[SourceImage]
    classes: list[str]  # source class names, in source order
    aliases: dict[str, str] = field(
        default_factory=dict
    )  # other keys a class map may use (e.g. "3" → "car")
    mode: str = "boxes"  # boxes | masks | both
    skips: Skips = field(default_factory=Skips)
    extra_files: list[tuple[Path, str]] = field(
        default_factory=list
    )  # (source file, output rel) to copy
    roots: list[Path] = field(
        default_factory=list
    )  # folders every copied file must lie in (else `root`)
    notes: dict[str, Any] = field(default_factory=dict)  # format-specific provenance


def number(value: Any, where: Where, field: str) -> float:
    """A finite number from JSON/XML/text, or an error naming the field."""
    if isinstance(value, bool):
        raise where.error(f"{value!r} is not a number", field)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise where.error(f"{value!r} is not a number", field) from None
    if not math.isfinite(out):
        raise where.error(f"{value!r} is not a finite number", field)
    return out


def check_box(
    x: float,
    y: float,
    w: float,
    h: float,
    width: int,
    height: int,
    where: Where,
    field: str,
    clip: bool = False,
) -> tuple[float, float, float, float]:
    """Refuse a box of negative (or zero) size or outside the image; clip overhang up to the tolerance
    (any overhang, with clip).

    Callers skip zero-size boxes (`ZERO_SIZE`) before calling this.
    """
    if w <= 0 or h <= 0:
        kind = "negative" if min(w, h) < 0 else "zero"
        raise where.error(
            f"box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] has {kind} size",
            field,
            hint="width and height must be positive",
        )
    x0, y0, x1, y1 = x, y, x + w, y + h
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise where.error(
            f"box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] lies outside the {width}x{height} image",
            field,
            hint="check the coordinates and the image size",
        )
    overhang = max(-x0, -y0, x1 - width, y1 - height)
    if overhang > EDGE_TOLERANCE_PX and not clip:
        raise where.error(
            f"box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] sticks out of the {width}x{height} image "
            f"by {overhang:.1f} px",
            field,
            hint=CLIP_HINT,
        )
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    x1, y1 = min(x1, float(width)), min(y1, float(height))
    return x0, y0, x1 - x0, y1 - y0


def image_size(
    path: Path, where: Where, field: str = "image", max_side: int | None = None
) -> tuple[int, int]:
    """(width, height) from the image header alone; a missing or unreadable image is an error naming it.

    Pillow's own decompression-bomb guard is off here (it warns on stderr, or raises a bare error):
    `max_side` (validate.max_image_side) is enforced on the header instead, before any pixel is decoded.
    The full decode by content happens before anything is written (`writer.verify_images`).
    """
    if not path.is_file():
        raise where.error(
            f"image {path} does not exist", field, hint="check the image folder and file name"
        )
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    # ImportError: once ultralytics is imported, its Image.open patch raises it for an unknown format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, ImportError) as exc:
        raise where.error(
            f"image {path} cannot be read ({exc})", field, hint="replace or remove the file"
        ) from None
    if width <= 0 or height <= 0 or (max_side is not None and max(width, height) > max_side):
        raise where.error(
            f"image {path}: the header claims {width}x{height} pixels (limit {max_side})",
            field,
            hint="the file is corrupt or hostile; re-export it (or raise validate.max_image_side)",
        )
    return width, height


def inside(root: Path, path: Path, where: Where, field: str) -> Path:
    """`path` resolved (symlinks followed); refused unless it lies inside `root` (resolved too).

    Every file an import reads goes through here: a symlink out of the source, or a folder link plus
    `..`, is refused by where it really is, not by how its name looks.
    """
    try:
        base, real = Path(root).resolve(), Path(path).resolve()
    except (
        OSError,
        RuntimeError,
        ValueError,
    ) as exc:  # RuntimeError: a symlink loop (3.11); ValueError: NUL
        raise where.error(
            f"{path} cannot be resolved ({exc})",
            field,
            hint="remove the symlink loop or the broken link",
        ) from None
    if real != base and base not in real.parents:
        raise where.error(
            f"{path} resolves outside {root} (to {real})",
            field,
            hint=f"keep every file the import reads inside {root}; copy it in instead of linking out",
        )
    return real


def check_tree(root: Path, folder: Path, field: str) -> None:
    """Every entry under `folder` (not followed) is a folder or a regular file, and every symlink
    resolves inside `root`.

    A folder scan neither descends into a linked folder nor lists a pipe or device, so without this a
    link out of the source, or a label that is a FIFO, would be skipped without a word, not refused.
    """
    if not folder.is_dir():
        return
    for base, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(base) / name
            if path.is_symlink():
                inside(root, path, Where(path), field)
            if not (path.is_dir() or path.is_file()):
                raise VigilError(
                    "not a regular file (a pipe, socket, device or broken link)",
                    path=path,
                    field=field,
                    hint="replace it with the file itself, or remove it",
                )


def named_path(root: Path, name: Any, where: Where, field: str) -> Path:
    """The file a source names (`file_name`, `<filename>`): relative, no `..`, and resolving inside `root`."""
    if not isinstance(name, str) or not name.strip():
        raise where.error(
            f"{name!r} is not a file name", field, hint="a path relative to the image folder"
        )
    rel = name.replace("\\", "/")
    if not is_safe_relpath(rel) or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in rel):
        raise where.error(
            f"{name!r} is absolute, climbs out with '..' or holds control characters",
            field,
            hint=f"file names must be relative to {root}, without '..'",
        )
    inside(root, root / rel, where, field)
    return root / rel


def read_text(path: Path, where: Where | None = None, field: str | None = None) -> str:
    """A text file as UTF-8 (a leading BOM dropped); else one error naming the line of the bad byte."""
    where = where or Where(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise where.error("file not found", field) from None
    except OSError as exc:
        raise where.error(f"cannot read ({exc.strerror})", field) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise VigilError(
            f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})",
            path=path,
            line=line,
            field=field,
            hint="save the file as UTF-8",
        ) from None


def load_json(path: Path, hint: str | None = None) -> Any:
    """A JSON document, or one error (bad UTF-8, bad JSON, nesting too deep for Python)."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VigilError(
            f"not valid JSON ({exc.msg} at column {exc.colno})",
            path=path,
            line=exc.lineno,
            hint=hint,
        ) from None
    except RecursionError:
        raise VigilError("JSON nested too deep to read", path=path, hint=hint) from None


def load_yaml(path: Path) -> Any:
    """A YAML (or JSON) document read safely: no tags that build Python objects, errors with their line."""
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise VigilError(
            f"not valid YAML/JSON ({exc.problem or exc.context})",
            path=path,
            line=line,
            hint="plain YAML: mappings, lists, strings and numbers; no !!python tags",
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise VigilError(f"not valid YAML/JSON ({type(exc).__name__})", path=path) from None


def class_name(value: Any, where: Where, field: str) -> str:
    """A class name: one line of printable text, by the rule `vigil data check` reads classes.txt with
    (`layout.class_name_problem`: a line break or control character would shift every class id after it)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise where.error(f"class name {value!r} is not text", field)
    name = str(value).strip()
    if not name:
        raise where.error("empty class name", field, hint="every class needs a name")
    problem = class_name_problem(name)
    if problem is None and any(unicodedata.category(c) == "Cs" for c in name):
        problem = f"class name {name!r} holds a lone surrogate (not text UTF-8 can store)"
    if problem is not None:
        raise where.error(
            problem,
            field,
            hint="a class name is one line of printable text: classes.txt "
            "gives line i to class id i",
        )
    return name


def read_class_lines(path: Path) -> list[str]:
    """classes.txt: one name per `\\n`-separated line (trailing blank lines ignored), each a class name."""
    lines = read_text(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    names: dict[str, int] = {}
    for i, line in enumerate(lines, start=1):
        name = class_name(line, Where(path, i), "class")
        if name in names:
            raise VigilError(
                f"class name {name!r} appears twice (line {names[name]})",
                path=path,
                line=i,
                hint="class names must be unique",
            )
        names[name] = i
    return list(names)


def polygon_extent(polygons: list[list[float]]) -> tuple[float, float, float, float]:
    """Tight box (x, y, w, h) of polygon outlines: exactly their extreme coordinates."""
    xs = [v for poly in polygons for v in poly[0::2]]
    ys = [v for poly in polygons for v in poly[1::2]]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


@dataclass
class ClassMap:
    """Rename, merge or drop source classes. Keys are source names (or ids); a null target drops the class.

    `"*": null` drops every class the map does not name; otherwise unnamed classes keep their name.
    """

    rules: dict[str, str | None] = field(default_factory=dict)
    drop_rest: bool = False
    path: Path | None = None

    def target(self, name: str, aliases: list[str]) -> str | None:
        for key in (name, *aliases):
            if key in self.rules:
                return self.rules[key]
        return None if self.drop_rest else name

    def classes(self, source: list[str], aliases: dict[str, str]) -> list[str]:
        """Output class names: the map's targets in the order they first appear, then kept unnamed classes."""
        back = _aliases_by_name(aliases)
        out = [t for t in dict.fromkeys(self.rules.values()) if t is not None]
        for name in source:
            t = self.target(name, back.get(name, []))
            if t is not None and t not in out:
                out.append(t)
        return out

    def unused_keys(self, source: list[str], aliases: dict[str, str]) -> list[str]:
        known = set(source) | set(aliases)
        return [k for k in self.rules if k not in known]


def _aliases_by_name(aliases: dict[str, str]) -> dict[str, list[str]]:
    back: dict[str, list[str]] = {}
    for alias, name in aliases.items():
        back.setdefault(name, []).append(alias)
    return back


def load_class_map(path: Path | None) -> ClassMap:
    """Read a YAML or JSON mapping `source: target` (target null = drop; key `*` = the rest)."""
    if path is None:
        return ClassMap()
    if not Path(path).is_file():
        raise VigilError("class map file not found", path=path, field="--class-map")
    data = load_yaml(Path(path))
    if not isinstance(data, dict) or not data:
        raise VigilError(
            "a class map must be a non-empty mapping `source class: target class`",
            path=path,
            hint="e.g. `pedestrian: person`, `bicycle: null` to drop, `'*': null` to drop the rest",
        )
    rules: dict[str, str | None] = {}
    drop_rest = False
    for key, value in data.items():
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise VigilError(f"key {key!r} must be a class name or id", path=path, field=str(key))
        if str(key) == "*":
            if value is not None:
                raise VigilError(
                    "`*` may only map to null (drop every class not named)", path=path, field="*"
                )
            drop_rest = True
            continue
        if value is not None and (
            not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip()
        ):
            raise VigilError(
                f"target {value!r} must be a class name or null", path=path, field=str(key)
            )
        target = None if value is None else class_name(value, Where(Path(path)), str(key))
        rules[str(key).strip()] = target
    return ClassMap(rules, drop_rest, Path(path))
