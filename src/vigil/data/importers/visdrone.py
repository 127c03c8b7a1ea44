"""VisDrone-DET (`images/*.jpg` + `annotations/*.txt`, per line `x,y,w,h,score,class,truncation,occlusion`).

As VisDrone defines them: class 0 is an "ignored region" and a ground-truth score of 0 marks a box
the evaluation ignores; both are kept out of the labels and recorded in the manifest `ignore`.
Classes 1-11 are pedestrian … others, matched by name or number in `--class-map`. The first part of a
VisDrone file name (`0000002_00005_d_0000014`) is the source video: it becomes the default group, so
frames of one video stay in one split. With `keep_split`, each image records the VisDrone split its
folder names (`VisDrone2019-DET-train` → `source_split: train`, `-val` → val, `-test-dev` /
`-test-challenge` → test), and the `split` stage keeps it.
"""

from __future__ import annotations

import re
from pathlib import Path

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
    image_size,
    inside,
    number,
    read_text,
    steps,
)
from vigil.data.layout import IMAGE_SUFFIXES
from vigil.errors import VigilError

CLASSES = (
    "pedestrian",
    "people",
    "bicycle",
    "car",
    "van",
    "truck",
    "tricycle",
    "awning-tricycle",
    "bus",
    "motor",
    "others",
)
FIELDS = ("x", "y", "w", "h", "score", "class", "truncation", "occlusion")
VIDEO_NAME = re.compile(r"^(\d+)_\d+_[a-z]_\d+$")


def find_splits(src: Path) -> list[Path]:
    """Folders holding both images/ and annotations/: `src` itself or its VisDrone2019-DET-* children."""
    if not Path(src).is_dir():
        raise VigilError(
            "not a folder",
            path=src,
            hint="point at a VisDrone2019-DET-* folder or the folder holding them",
        )
    found = sorted(
        {
            a.parent
            for a in Path(src).rglob("annotations")
            if a.is_dir() and (a.parent / "images").is_dir()
        }
    )
    if not found:
        raise VigilError(
            "no folder with images/ and annotations/ found",
            path=src,
            hint="point at a VisDrone2019-DET-* folder or the folder holding them",
        )
    for split in found:
        for sub in ("images", "annotations"):
            inside(src, split / sub, Where(split / sub), "folder")
            check_tree(src, split / sub, sub)
    return found


def read_annotation(
    path: Path, width: int, height: int, clip: bool, image: SourceImage, skips: Skips
) -> None:
    for line_no, text in enumerate(read_text(path).split("\n"), start=1):
        parts = [p.strip() for p in text.strip().rstrip(",").split(",")]
        if not text.strip():
            continue
        where = Where(path, line_no)
        if len(parts) < len(FIELDS):
            raise where.error(
                f"{len(parts)} fields, expected {len(FIELDS)}: {','.join(FIELDS)}", "fields"
            )
        v = {name: number(p, where, name) for name, p in zip(FIELDS, parts, strict=False)}
        cls = int(v["class"])
        if v["class"] != cls or not 0 <= cls <= len(CLASSES):
            raise where.error(
                f"class {parts[5]} is not a VisDrone class (0 ignored region, 1-11 {', '.join(CLASSES)})",
                "class",
            )
        if v["w"] == 0 or v["h"] == 0:
            skips.add(ZERO_SIZE, where)
            continue
        x, y, w, h = check_box(
            v["x"], v["y"], v["w"], v["h"], width, height, where, "x,y,w,h", clip
        )
        attrs = {"truncation": int(v["truncation"]), "occlusion": int(v["occlusion"])}
        if cls == 0:
            image.ignore.append(
                IgnoreRegion(x, y, w, h, "visdrone ignored region", {"line": line_no})
            )
        elif v["score"] == 0:
            image.ignore.append(
                IgnoreRegion(
                    x,
                    y,
                    w,
                    h,
                    "visdrone score 0",
                    {"line": line_no, "class": CLASSES[cls - 1], **attrs},
                )
            )
        else:
            image.boxes.append(SourceBox(CLASSES[cls - 1], x, y, w, h, attrs))


SOURCE_SPLIT = "source_split"  # the manifest field the `split` stage keeps
_SPLIT_NAMES = re.compile(r"-(train|val|test)(?:-dev|-challenge)?$", re.IGNORECASE)


def source_split(folder: Path) -> str:
    """train / val / test from a VisDrone split folder's name (`VisDrone2019-DET-val` → val)."""
    match = _SPLIT_NAMES.search(folder.name)
    if match is None:
        raise VigilError(
            "--keep-split cannot tell which VisDrone split this folder is",
            path=folder,
            hint="name it like VisDrone2019-DET-train / -val / -test-dev, or import without --keep-split",
        )
    return match.group(1).lower()


def read_visdrone(
    src: Path, clip: bool = False, max_side: int | None = None, keep_split: bool = False
) -> SourceDataset:
    """Every image and annotation read must resolve inside `src`; no annotation file at all is refused."""
    src = Path(src)
    ds = SourceDataset(
        "visdrone", src, [], list(CLASSES), aliases={str(i + 1): n for i, n in enumerate(CLASSES)}
    )
    pairs: list[tuple[Path, Path, str]] = []
    kept: dict[Path, str] = {}
    for split in find_splits(src):
        if keep_split:
            kept[split] = source_split(split)
        images = {
            p.stem: p
            for p in sorted((split / "images").iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES
        }
        annotations = sorted(p for p in (split / "annotations").glob("*.txt") if p.is_file())
        if not annotations:
            raise VigilError(
                "no annotation files (*.txt) in annotations/",
                path=split / "annotations",
                field="annotations",
                hint="VisDrone-DET keeps one <image name>.txt per image here; "
                "an import without them would hold no labelled image",
            )
        for ann in annotations:
            inside(src, ann, Where(ann), "annotation")
            if ann.stem not in images:
                raise VigilError(
                    f"no image {ann.stem}.* in {split / 'images'}",
                    path=ann,
                    field="image",
                    hint="every annotation file needs its image (same name)",
                )
            rel = (images.pop(ann.stem).relative_to(src)).as_posix()
            pairs.append((split / "images" / Path(rel).name, ann, rel))
        for path in images.values():
            ds.skips.add(
                "image without an annotation file (not imported)", path.relative_to(src).as_posix()
            )
    with steps(pairs, "read visdrone") as bar:
        for image_path, ann, rel in bar:
            inside(src, image_path, Where(ann), "image")
            width, height = image_size(image_path, Where(ann), "image", max_side)
            out_rel = "/".join(p for p in Path(rel).parts if p != "images")
            match = VIDEO_NAME.match(image_path.stem)
            image = SourceImage(
                image_path,
                f"images/{out_rel}",
                rel,
                width,
                height,
                group=f"visdrone-{match.group(1)}" if match else image_path.stem,
            )
            if keep_split:
                image.fields[SOURCE_SPLIT] = kept[image_path.parent.parent]
            read_annotation(ann, width, height, clip, image, ds.skips)
            ds.images.append(image)
    ds.roots = [src]
    return ds
