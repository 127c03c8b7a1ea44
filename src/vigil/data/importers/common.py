"""What every importer shares: the source records, box checks, image headers and the class map."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, UnidentifiedImageError

from vigil.errors import VigilError

EDGE_TOLERANCE_PX = 1.0  # a box may stick out of the image this far (rounding); it is clipped, never refused
CLIP_HINT = "fix the annotation, or pass --clip to clip boxes that stick out of the image"
ZERO_SIZE = "box of zero width or height (not labelled)"  # real COCO/VisDrone hold a few: skipped, not refused


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
    attrs: dict[str, Any] = field(default_factory=dict)   # per-object fields kept in the manifest `objects`
    polygons: list[list[float]] | None = None             # mask outline(s) in pixels, for YOLO-seg labels


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
    src: Path                 # the image file to copy
    rel: str                  # output path, `images/…`
    src_rel: str              # path as the source names it (provenance, metadata lookup)
    width: int
    height: int
    group: str                # default driver_id / vehicle_id when nothing else gives them
    boxes: list[SourceBox] = field(default_factory=list)
    ignore: list[IgnoreRegion] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # manifest fields the source itself gives


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
    classes: list[str]                                      # source class names, in source order
    aliases: dict[str, str] = field(default_factory=dict)   # other keys a class map may use (e.g. "3" → "car")
    mode: str = "boxes"                                     # boxes | masks | both
    skips: Skips = field(default_factory=Skips)
    extra_files: list[tuple[Path, str]] = field(default_factory=list)  # (source file, output rel) to copy
    notes: dict[str, Any] = field(default_factory=dict)     # format-specific provenance


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


def check_box(x: float, y: float, w: float, h: float, width: int, height: int, where: Where,
              field: str, clip: bool = False) -> tuple[float, float, float, float]:
    """Refuse a box of negative (or zero) size or outside the image; clip overhang up to the tolerance (any, with clip).

    Callers skip zero-size boxes (`ZERO_SIZE`) before calling this.
    """
    if w <= 0 or h <= 0:
        kind = "negative" if min(w, h) < 0 else "zero"
        raise where.error(f"box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] has {kind} size", field,
                          hint="width and height must be positive")
    x0, y0, x1, y1 = x, y, x + w, y + h
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise where.error(f"box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] lies outside the {width}x{height} image",
                          field, hint="check the coordinates and the image size")
    overhang = max(-x0, -y0, x1 - width, y1 - height)
    if overhang > EDGE_TOLERANCE_PX and not clip:
        raise where.error(f"box [x={x:g}, y={y:g}, w={w:g}, h={h:g}] sticks out of the {width}x{height} image "
                          f"by {overhang:.1f} px", field, hint=CLIP_HINT)
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    x1, y1 = min(x1, float(width)), min(y1, float(height))
    return x0, y0, x1 - x0, y1 - y0


def image_size(path: Path, where: Where, field: str = "image") -> tuple[int, int]:
    """(width, height) from the image header; a missing or unreadable image is an error naming it."""
    if not path.is_file():
        raise where.error(f"image {path} does not exist", field, hint="check the image folder and file name")
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise where.error(f"image {path} cannot be read ({exc})", field, hint="replace or remove the file") from None


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
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError("class map file not found", path=path) from None
    except yaml.YAMLError as exc:
        raise VigilError(f"not valid YAML/JSON: {exc}", path=path) from None
    if not isinstance(data, dict) or not data:
        raise VigilError("a class map must be a non-empty mapping `source class: target class`", path=path,
                         hint="e.g. `pedestrian: person`, `bicycle: null` to drop, `'*': null` to drop the rest")
    rules: dict[str, str | None] = {}
    drop_rest = False
    for key, value in data.items():
        bad = not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip()
        if value is not None and bad:
            raise VigilError(f"target {value!r} must be a class name or null", path=path, field=str(key))
        if str(key) == "*":
            if value is not None:
                raise VigilError("`*` may only map to null (drop every class not named)", path=path, field="*")
            drop_rest = True
            continue
        rules[str(key).strip()] = None if value is None else str(value).strip()
    return ClassMap(rules, drop_rest, Path(path))
