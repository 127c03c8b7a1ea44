"""COCO instances JSON (boxes, masks or both) → source records.

Category ids are arbitrary; classes follow the categories sorted by id. An annotation without a
`bbox` gets the tight box of its segmentation: exactly the polygon extents, or pycocotools' box of
the RLE. `area` comes from the mask (pycocotools) where missing. `iscrowd` regions are kept out of
the labels and recorded in the manifest `ignore`. The mode (boxes, masks, both) is detected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from vigil.data.importers.common import (
    ZERO_SIZE,
    IgnoreRegion,
    Skips,
    SourceBox,
    SourceDataset,
    SourceImage,
    Where,
    check_box,
    class_name,
    image_size,
    load_json,
    named_path,
    number,
    polygon_extent,
    steps,
)
from vigil.data.importers.segments import rle_object, rle_polygons
from vigil.errors import VigilError

GROUP_KEYS = (
    "video_id",
    "sequence",
    "session",
)  # image keys that group frames; else each image is its own group
NOT_COCO_HINT = (
    "expected a COCO instances file: an object with `images`, `annotations` and `categories` lists"
)


def _id(value: Any, where: Where, field: str) -> int | float | str:
    """An id used as a key: a number or a string (a list or an object cannot name anything)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise where.error(f"{field} {value!r} is not a number or a string", field)
    return value


def load_coco(path: Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise VigilError("annotation file not found", path=path)
    data = load_json(Path(path), hint=NOT_COCO_HINT)
    if not isinstance(data, dict):
        raise VigilError(
            f"a JSON {type(data).__name__}, not a COCO object", path=path, hint=NOT_COCO_HINT
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            problem = "is missing" if key not in data else "is not a list"
            raise VigilError(
                f"`{key}` {problem}: this JSON is not COCO instances",
                path=path,
                field=key,
                hint=NOT_COCO_HINT,
            )
    return data


def _categories(data: dict[str, Any], path: Path) -> dict[int, str]:
    cats: dict[int, str] = {}
    names: dict[str, int] = {}
    for i, cat in enumerate(data["categories"]):
        where = Where(path, item=f"categories[{i}]")
        if not isinstance(cat, dict) or "id" not in cat or not str(cat.get("name", "")).strip():
            raise where.error("a category needs an `id` and a `name`", "id")
        cid_f = number(cat["id"], where, "id")
        if not cid_f.is_integer():
            raise where.error(f"category id {cat['id']!r} is not an integer", "id")
        cid = int(cid_f)
        name = class_name(cat["name"], where, "name")
        if cid in cats:
            raise where.error(f"category id {cid} appears twice", "id")
        if name in names:
            raise where.error(
                f"categories {names[name]} and {cid} are both named {name!r}",
                "name",
                hint="rename one in the JSON; classes are matched by name",
            )
        cats[cid], names[name] = name, cid
    return dict(sorted(cats.items()))


def _segmentation(
    seg: Any, width: int, height: int, where: Where
) -> tuple[list[list[float]] | None, Any]:
    """(polygons in pixels or None, pycocotools RLE or None) of one annotation's segmentation."""
    if seg is None or seg == []:
        return None, None
    if isinstance(seg, list):
        polys = []
        for k, poly in enumerate(seg):
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                raise where.error(
                    "a polygon must be a flat list of at least 3 x,y pairs", f"segmentation[{k}]"
                )
            polys.append([number(v, where, f"segmentation[{k}]") for v in poly])
        return polys, mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if not isinstance(seg["size"], list) or seg["size"] != [height, width]:
            raise where.error(
                f"RLE size {seg['size']} is not the image's [height, width] [{height}, {width}]",
                "segmentation.size",
            )
        try:
            rle = rle_object(seg, height, width)
            mask_utils.area(rle)
        except Exception as exc:  # pycocotools raises bare TypeError/ValueError on malformed counts
            raise where.error(f"RLE cannot be decoded ({exc})", "segmentation.counts") from None
        return None, rle
    raise where.error(
        "segmentation must be a list of polygons or an RLE {size, counts}", "segmentation"
    )


def read_coco(
    annotations: Path, images_dir: Path, clip: bool = False, max_side: int | None = None
) -> SourceDataset:
    """Every path `file_name` names must resolve inside `images_dir` (no `..`, no symlink out of it)."""
    data = load_coco(annotations)
    if not Path(images_dir).is_dir():
        raise VigilError("--images is not a folder", path=images_dir, field="--images")
    cats = _categories(data, annotations)
    images: dict[Any, SourceImage] = {}
    names: set[str] = set()
    with steps(data["images"], "read coco images") as bar:
        for i, entry in enumerate(bar):
            where = Where(
                annotations, item=f"image id={entry.get('id') if isinstance(entry, dict) else '?'}"
            )
            if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
                raise where.error("an image needs an `id` and a `file_name`", f"images[{i}]")
            image_id = _id(entry["id"], where, "id")
            path = named_path(images_dir, entry["file_name"], where, "file_name")
            rel = path.relative_to(images_dir).as_posix()
            if image_id in images or rel in names:
                raise where.error(
                    f"image id {entry['id']} or file_name {rel!r} appears twice", "id"
                )
            width, height = image_size(path, where, "file_name", max_side)
            declared = (entry.get("width"), entry.get("height"))
            if declared != (None, None) and declared != (width, height):
                raise where.error(
                    f"declared size {declared[0]}x{declared[1]} but the image is {width}x{height}",
                    "width",
                    hint="fix width/height in the JSON (boxes are in the declared size)",
                )
            fields = {
                k: v for k, v in entry.items() if k not in ("id", "file_name", "width", "height")
            }
            group = next(
                (str(entry[k]) for k in GROUP_KEYS if entry.get(k) is not None),
                str(Path(rel).with_suffix("")),
            )
            images[image_id] = SourceImage(
                path,
                f"images/{rel}",
                rel,
                width,
                height,
                group=group,
                fields={"coco_image_id": entry["id"], **fields},
            )
            names.add(rel)
    has_box = has_mask = False
    skips = Skips()
    with steps(data["annotations"], "read coco annotations") as bar:
        for i, ann in enumerate(bar):
            ann_id = ann.get("id", f"#{i}") if isinstance(ann, dict) else f"#{i}"
            where = Where(annotations, item=f"annotation id={ann_id}")
            if not isinstance(ann, dict):
                raise where.error("an annotation must be an object", f"annotations[{i}]")
            image = images.get(_id(ann.get("image_id"), where, "image_id"))
            if image is None:
                raise where.error(
                    f"image_id {ann.get('image_id')!r} is not in `images`", "image_id"
                )
            if _id(ann.get("category_id"), where, "category_id") not in cats:
                raise where.error(
                    f"unknown category id {ann.get('category_id')!r} (categories: {list(cats)})",
                    "category_id",
                    hint="add the category to `categories` or fix the annotation",
                )
            polys, rle = _segmentation(ann.get("segmentation"), image.width, image.height, where)
            bbox = ann.get("bbox")
            if bbox is not None and bbox != []:
                if not isinstance(bbox, list) or len(bbox) != 4:
                    raise where.error(f"bbox {bbox!r} is not [x, y, w, h]", "bbox")
                x, y, w, h = (number(v, where, "bbox") for v in bbox)
                has_box = True
            elif polys:
                x, y, w, h = polygon_extent(polys)
            elif rle is not None:
                x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            else:
                raise where.error("annotation has neither a bbox nor a segmentation", "bbox")
            has_mask = has_mask or rle is not None
            if w == 0 or h == 0:
                skips.add(ZERO_SIZE, where)
                continue
            x, y, w, h = check_box(x, y, w, h, image.width, image.height, where, "bbox", clip)
            area = (
                number(ann["area"], where, "area")
                if ann.get("area") is not None
                else (float(mask_utils.area(rle)) if rle is not None else w * h)
            )
            name = cats[ann["category_id"]]
            if ann.get("iscrowd"):
                image.ignore.append(
                    IgnoreRegion(x, y, w, h, "iscrowd", {"id": ann_id, "class": name, "area": area})
                )
                continue
            if polys is None and rle is not None:
                polys = rle_polygons(rle)
            image.boxes.append(
                SourceBox(name, x, y, w, h, {"id": ann_id, "area": round(area, 3)}, polys or None)
            )
    mode = "both" if has_box and has_mask else "masks" if has_mask else "boxes"
    return SourceDataset(
        "coco",
        annotations,
        list(images.values()),
        list(cats.values()),
        aliases={str(cid): name for cid, name in cats.items()},
        mode=mode,
        skips=skips,
        roots=[Path(images_dir)],
        notes={
            "coco": {
                "categories": {str(k): v for k, v in cats.items()},
                "info": _plain(data.get("info")),
            }
        },
    )


def _plain(value: Any) -> Any:
    """The `info` block for provenance when it is plain JSON, else a note (it must never stop an import)."""
    try:
        json.dumps(value, allow_nan=False, indent=2)
    except (ValueError, TypeError, RecursionError):
        return "(not kept: not plain JSON)"
    return value
