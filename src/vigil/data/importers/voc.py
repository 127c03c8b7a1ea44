"""Pascal VOC / LabelImg XML → source records.

Pixel conventions (`--pixels`): `labelimg` (default) reads 0-based pixel edges, `xmax = x + w`;
`voc` reads the VOC devkit's 1-based inclusive pixel indices, so x = xmin - 1 and w = xmax - xmin + 1.
An XML without `<size>` has its size read from the image. `<truncated>`, `<difficult>` (and `<pose>`)
are kept per object in the manifest `objects`.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat

from vigil.data.importers.common import (
    ZERO_SIZE,
    Skips,
    SourceBox,
    SourceDataset,
    SourceImage,
    Where,
    check_box,
    class_name,
    image_size,
    inside,
    number,
    steps,
)
from vigil.data.layout import IMAGE_SUFFIXES, is_safe_relpath
from vigil.errors import VigilError

PIXELS = ("labelimg", "voc")
FLAGS = ("truncated", "difficult")


def parse_xml(path: Path) -> tuple[ET.Element, dict[int, int]]:
    """Parse with expat so every element keeps its line number (ElementTree drops them)."""
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise VigilError(f"cannot read ({exc.strerror})", path=path) from None
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise VigilError(
            f"not well-formed XML ({expat.errors.messages[exc.code]})", path=path, line=exc.lineno
        ) from None
    root = builder.close()
    return root, lines


def _within(folder: Path, roots: list[Path]) -> Path | None:
    """The root that holds `folder` by its name (no `..` out of it), else None."""
    path = os.path.abspath(folder)
    for root in roots:
        base = os.path.abspath(root)
        if path == base or path.startswith(base.rstrip(os.sep) + os.sep):
            return root
    return None


def _find_image(
    xml: Path, root: ET.Element, lines: dict[int, int], src_root: Path, images_dir: Path | None
) -> Path | None:
    """The image `<filename>` names, looked up only in folders inside the source (or --images).

    A `<filename>` that is absolute or uses `..` is refused; the file found must resolve inside its
    root, so a symlink (file or folder) out of the source is refused too.
    """
    node = root.find("filename")
    where = Where(xml, lines.get(id(node), 1))
    name = (root.findtext("filename") or "").strip().replace("\\", "/")
    if name and (not is_safe_relpath(name) or any(ord(c) < 32 for c in name)):
        raise where.error(
            f"<filename> {name!r} is absolute or climbs out with '..'",
            "filename",
            hint="<filename> names the image relative to its folder",
        )
    roots = [images_dir, src_root] if images_dir else [src_root]
    folders = [images_dir] if images_dir else []
    folders += [
        xml.parent,
        src_root / "JPEGImages",
        xml.parent.parent / "JPEGImages",
        src_root / "images",
    ]
    candidates = [(f, r) for f in folders if f is not None and (r := _within(f, roots)) is not None]
    found = None
    if name:
        found = next(((f / name, r) for f, r in candidates if (f / name).is_file()), None)
    stems = (
        [Path(name).stem, xml.stem] if name else [xml.stem]
    )  # `<filename>` without suffix, or renamed files
    if found is None:
        found = next(
            (
                (f / (stem + suffix), r)
                for f, r in candidates
                for stem in stems
                for suffix in sorted(IMAGE_SUFFIXES)
                if (f / (stem + suffix)).is_file()
            ),
            None,
        )
    if found is None:
        return None
    inside(found[1], found[0], where, "filename")
    return found[0]


def _source_rel(image: Path, src_root: Path, images_dir: Path | None) -> str:
    base = images_dir if images_dir and _within(image, [images_dir]) else src_root
    return Path(os.path.relpath(os.path.abspath(image), os.path.abspath(base))).as_posix()


def _out_rel(source_rel: str) -> str:
    return "/".join(p for p in Path(source_rel).parts if p not in ("JPEGImages", "images"))


def read_voc_file(
    xml: Path,
    src_root: Path,
    images_dir: Path | None,
    pixels: str,
    clip: bool,
    skips: Skips,
    max_side: int | None = None,
) -> SourceImage:
    root, lines = parse_xml(xml)
    if root.tag != "annotation":
        raise VigilError(
            f"root element is <{root.tag}>, not <annotation>",
            path=xml,
            line=1,
            hint="expected Pascal VOC / LabelImg XML",
        )
    image_path = _find_image(xml, root, lines, src_root, images_dir)
    if image_path is None:
        raise VigilError(
            f"image {root.findtext('filename')!r} not found beside the XML, in JPEGImages/ or --images",
            path=xml,
            line=lines.get(id(root.find("filename")), 1),
            field="filename",
            hint="pass --images DIR where the images are",
        )
    width, height = image_size(image_path, Where(xml), "filename", max_side)
    size = root.find("size")
    if size is not None and (size.findtext("width") or "").strip():
        where = Where(xml, lines.get(id(size)))
        declared = (
            int(number(size.findtext("width"), where, "size/width")),
            int(number(size.findtext("height"), where, "size/height")),
        )
        if declared != (0, 0) and declared != (width, height):
            raise where.error(
                f"<size> says {declared[0]}x{declared[1]} but the image is {width}x{height}",
                "size",
                hint="fix <size>, or remove it to use the image's own size",
            )
    src_rel = _source_rel(image_path, src_root, images_dir)
    rel = _out_rel(src_rel)
    xml_rel = xml.relative_to(src_root).as_posix() if src_root in xml.parents else xml.name
    out = SourceImage(
        image_path,
        f"images/{rel}",
        src_rel,
        width,
        height,
        group=str(Path(rel).with_suffix("")),
        fields={"annotation": xml_rel},
    )
    for k, obj in enumerate(root.iter("object"), start=1):
        where = Where(xml, lines.get(id(obj)), item=f"object {k}")
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise where.error("object has no <name>", "name")
        name = class_name(name, where, "name")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise where.error("object has no <bndbox>", "bndbox")
        coords = {}
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            node = bnd.find(tag)
            at = Where(xml, lines.get(id(node), where.line), item=f"object {k}")
            if node is None or not (node.text or "").strip():
                raise at.error(f"<{tag}> is missing or empty", f"bndbox/{tag}")
            coords[tag] = number((node.text or "").strip(), at, f"bndbox/{tag}")
        shift = (
            1.0 if pixels == "voc" else 0.0
        )  # VOC: 1-based inclusive pixel indices; LabelImg: 0-based edges
        x, y = coords["xmin"] - shift, coords["ymin"] - shift
        w, h = coords["xmax"] - x, coords["ymax"] - y
        if w == 0 or h == 0:
            skips.add(ZERO_SIZE, where)
            continue
        x, y, w, h = check_box(x, y, w, h, width, height, where, "bndbox", clip)
        attrs: dict[str, object] = {}
        for flag in FLAGS:
            text = (obj.findtext(flag) or "0").strip()
            attrs[flag] = int(number(text, where, flag))
        pose = (obj.findtext("pose") or "").strip()
        if pose:
            attrs["pose"] = pose
        out.boxes.append(SourceBox(name, x, y, w, h, attrs))
    return out


def read_voc(
    src: Path,
    images_dir: Path | None = None,
    pixels: str = "labelimg",
    clip: bool = False,
    max_side: int | None = None,
) -> SourceDataset:
    if pixels not in PIXELS:
        raise VigilError(f"--pixels {pixels!r} is not one of {PIXELS}", field="--pixels")
    src = Path(src)
    if not src.is_dir():
        raise VigilError("not a folder", path=src, hint="point at the folder holding the XML files")
    if images_dir is not None and not Path(images_dir).is_dir():
        raise VigilError("--images is not a folder", path=images_dir, field="--images")
    xmls = sorted(p for p in src.rglob("*.xml") if p.is_file())
    if not xmls:
        raise VigilError(
            "no .xml annotation files found",
            path=src,
            hint="point at the folder holding the XML files",
        )
    for xml in xmls:
        inside(src, xml, Where(xml), "file")
    skips = Skips()
    with steps(xmls, "read voc") as bar:
        images = [read_voc_file(x, src, images_dir, pixels, clip, skips, max_side) for x in bar]
    classes = sorted({b.cls for im in images for b in im.boxes})
    roots = [src] + ([Path(images_dir)] if images_dir else [])
    return SourceDataset(
        "voc", src, images, classes, skips=skips, roots=roots, notes={"voc": {"pixels": pixels}}
    )
