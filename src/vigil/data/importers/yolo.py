"""YOLO folder (images/, labels/, classes.txt or data.yaml `names`, optional manifest.jsonl) → source records.

The label path is derived from the image path (`images/` → `labels/`, suffix → `.txt`); an image
without a label file has no objects. Boxes touching the border (0 or 1) are valid. A line with more
than five numbers is a YOLO-seg polygon: its box is the polygon extent and the outline is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil.data.importers.common import (
    ZERO_SIZE,
    IgnoreRegion,
    Skips,
    SourceBox,
    SourceDataset,
    SourceImage,
    Where,
    check_box,
    check_tree,
    class_name,
    image_size,
    inside,
    load_yaml,
    number,
    polygon_extent,
    read_class_lines,
    read_text,
    steps,
)
from vigil.data.layout import CLASSES, MANIFEST, label_rel_for, list_images, parse_manifest
from vigil.errors import VigilError


def read_names(src: Path) -> list[str]:
    """classes.txt, else the `names` of a data.yaml (a list, or a mapping of ids 0…n-1 to names)."""
    if (src / CLASSES).is_file():
        inside(src, src / CLASSES, Where(src / CLASSES), "classes")
        return read_class_lines(src / CLASSES)
    for candidate in ("data.yaml", "dataset.yaml"):
        path = src / candidate
        if path.is_file():
            inside(src, path, Where(path), "names")
            return _yaml_names(path)
    raise VigilError(
        "no classes.txt or data.yaml with `names`", path=src, hint="write one class name per line"
    )


def _yaml_names(path: Path) -> list[str]:
    data = load_yaml(path)
    where = Where(path)
    if not isinstance(data, dict):
        raise where.error(
            f"a YAML {type(data).__name__}, not a mapping with `names`",
            "names",
            hint="ultralytics' data.yaml: `names: [cat, dog]` or `names: {0: cat, 1: dog}`",
        )
    names = data.get("names")
    if isinstance(names, dict):
        ids = list(names)
        if any(not isinstance(k, int) or isinstance(k, bool) for k in ids) or sorted(ids) != list(
            range(len(ids))
        ):
            raise where.error(
                f"`names` keys {ids[:10]} are not the class ids 0…{len(ids) - 1}",
                "names",
                hint="number the classes 0, 1, 2 … without gaps, or give `names` as a list",
            )
        values = [names[k] for k in range(len(ids))]
    elif isinstance(names, list):
        values = names
    else:
        raise where.error("`names` is missing or not a list/mapping", "names")
    out = [class_name(v, where, f"names[{i}]") for i, v in enumerate(values)]
    if not out:
        raise where.error("`names` is empty", "names")
    if len(set(out)) != len(out):
        raise where.error("duplicate class names", "names", hint="class names must be unique")
    return out


def source_manifest(src: Path) -> dict[str, dict[str, Any]]:
    """The folder's own manifest.jsonl (if any), keyed by image path."""
    path = src / MANIFEST
    if not path.is_file():
        return {}
    inside(src, path, Where(path), "manifest")
    try:
        parsed = parse_manifest(path)
    except RecursionError:
        raise VigilError("a line is JSON nested too deep", path=path) from None
    if parsed.errors:
        line, message = parsed.errors[0]
        raise VigilError(message, path=path, line=line)
    out: dict[str, dict[str, Any]] = {}
    for m in parsed.lines:
        if not isinstance(m.record.get("image"), str):
            raise VigilError(
                f"`image` {m.record.get('image')!r} is not a path",
                path=path,
                line=m.line,
                field="image",
            )
        out[m.record["image"]] = m.record
    return out


def read_label_file(
    path: Path, names: list[str], width: int, height: int, clip: bool, skips: Skips
) -> list[SourceBox]:
    boxes = []
    for number_, text in enumerate(read_text(path).split("\n"), start=1):
        fields = text.split()
        if not fields:
            continue
        where = Where(path, number_)
        if len(fields) < 5 or (len(fields) > 5 and len(fields) % 2 == 0):
            raise where.error(
                f"{len(fields)} fields: expected `class cx cy w h` or `class x1 y1 x2 y2 x3 y3 …`",
                "fields",
            )
        cls_f = number(fields[0], where, "class")
        if not cls_f.is_integer() or not 0 <= cls_f < len(names):
            raise where.error(
                f"class id {fields[0]} is not one of 0…{len(names) - 1} (classes.txt)", "class"
            )
        keys = (
            ("cx", "cy", "w", "h")
            if len(fields) == 5
            else [f"{'xy'[i % 2]}{i // 2 + 1}" for i in range(len(fields))]
        )
        values = [number(v, where, k) for v, k in zip(fields[1:], keys, strict=False)]
        polygons = None
        if len(values) == 4:
            cx, cy, w, h = values
            x, y, w, h = (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height
        else:
            polygons = [[v * (width if i % 2 == 0 else height) for i, v in enumerate(values)]]
            x, y, w, h = polygon_extent(polygons)
        if w == 0 or h == 0:
            skips.add(ZERO_SIZE, where)
            continue
        x, y, w, h = check_box(x, y, w, h, width, height, where, "box", clip)
        boxes.append(SourceBox(names[int(cls_f)], x, y, w, h, polygons=polygons))
    return boxes


def _carry_object_fields(image: SourceImage, where: Where) -> None:
    """A canonical folder's own `objects` (aligned with label lines) and `ignore` go back onto the boxes."""
    objects = image.fields.pop("objects", None)
    if isinstance(objects, dict) and all(
        isinstance(v, list) and len(v) == len(image.boxes) for v in objects.values()
    ):
        for i, box in enumerate(image.boxes):
            box.attrs.update({k: v[i] for k, v in objects.items()})
    regions = image.fields.pop("ignore", None)
    for region in regions if isinstance(regions, list) else []:
        if (
            isinstance(region, dict)
            and isinstance(region.get("box"), list)
            and len(region["box"]) == 4
        ):
            cx, cy, w, h = (number(v, where, "ignore.box") for v in region["box"])
            rest = {k: v for k, v in region.items() if k not in ("box", "reason")}
            image.ignore.append(
                IgnoreRegion(
                    (cx - w / 2) * image.width,
                    (cy - h / 2) * image.height,
                    w * image.width,
                    h * image.height,
                    str(region.get("reason", "")),
                    rest,
                )
            )


def read_yolo(src: Path, clip: bool = False, max_side: int | None = None) -> SourceDataset:
    """Every image, label and side file read must resolve inside `src` (a symlink out of it is refused)."""
    src = Path(src)
    if not src.is_dir():
        raise VigilError("not a folder", path=src, hint="expected images/…, labels/…, classes.txt")
    for sub in ("images", "labels"):
        check_tree(src, src / sub, sub)
    names = read_names(src)
    own = source_manifest(src)
    rels = list_images(src)
    if not rels:
        raise VigilError(
            "no images under images/", path=src, hint="expected images/…, labels/…, classes.txt"
        )
    images = []
    skips = Skips()
    has_seg = False
    with steps(rels, "read yolo") as bar:
        for rel in bar:
            record = dict(own.get(rel, {}))
            if record.get("labelled") is False:
                continue  # an unlabelled pool image is not training data; `skips` counts it below
            inside(src, src / rel, Where(src / rel), "image")
            width, height = image_size(
                src / rel, Where(src / MANIFEST if own else src, item=rel), max_side=max_side
            )
            label = src / label_rel_for(rel)
            if label.is_file():
                inside(src, label, Where(label), "label")
            boxes = (
                read_label_file(label, names, width, height, clip, skips) if label.is_file() else []
            )
            has_seg = has_seg or any(b.polygons for b in boxes)
            fields = {
                k: v
                for k, v in record.items()
                if k not in ("image", "width", "height", "labelled", "source")
            }
            image = SourceImage(
                src / rel,
                rel,
                rel,
                width,
                height,
                str(Path(rel).with_suffix("")),
                boxes,
                fields=fields,
            )
            _carry_object_fields(image, Where(src / MANIFEST, item=rel))
            images.append(image)
    ds = SourceDataset(
        "yolo",
        src,
        images,
        names,
        aliases={str(i): n for i, n in enumerate(names)},
        mode="both" if has_seg else "boxes",
        skips=skips,
    )
    pool = [rel for rel in rels if own.get(rel, {}).get("labelled") is False]
    if pool:
        ds.skips.add("unlabelled image (manifest labelled: false)", pool[0], len(pool))
    return ds
