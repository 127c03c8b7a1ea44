"""Pascal VOC / LabelImg XML → source records.

Pixel conventions (`--pixels`): `labelimg` (default) reads 0-based pixel edges, `xmax = x + w`;
`voc` reads the VOC devkit's 1-based inclusive pixel indices, so x = xmin - 1 and w = xmax - xmin + 1.
An XML without `<size>` has its size read from the image. `<truncated>`, `<difficult>` (and `<pose>`)
are kept per object in the manifest `objects`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat

from vigil.data.importers.common import (ZERO_SIZE, Skips, SourceBox, SourceDataset, SourceImage, Where, check_box,
                                         image_size, number)
from vigil.data.layout import IMAGE_SUFFIXES
from vigil.errors import VigilError
from vigil.progress import progress

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
        parser.Parse(Path(path).read_bytes(), True)
    except expat.ExpatError as exc:
        raise VigilError(f"not well-formed XML ({expat.errors.messages[exc.code]})", path=path,
                         line=exc.lineno) from None
    root = builder.close()
    return root, lines


def _find_image(xml: Path, root: ET.Element, src_root: Path, images_dir: Path | None) -> Path | None:
    name = (root.findtext("filename") or "").strip()
    folders = [images_dir] if images_dir else []
    folders += [xml.parent, src_root / "JPEGImages", xml.parent.parent / "JPEGImages", src_root / "images"]
    for folder in folders:
        if name and (folder / name).is_file():
            return folder / name
    stems = [Path(name).stem, xml.stem] if name else [xml.stem]  # `<filename>` without suffix, or renamed files
    for folder in folders:
        for stem in stems:
            for suffix in sorted(IMAGE_SUFFIXES):
                if (folder / (stem + suffix)).is_file():
                    return folder / (stem + suffix)
    return None


def _source_rel(image: Path, src_root: Path, images_dir: Path | None) -> str:
    base = images_dir if images_dir and images_dir in image.parents else src_root
    return (image.relative_to(base) if base in image.parents else Path(image.name)).as_posix()


def _out_rel(source_rel: str) -> str:
    return "/".join(p for p in Path(source_rel).parts if p not in ("JPEGImages", "images"))


def read_voc_file(xml: Path, src_root: Path, images_dir: Path | None, pixels: str, clip: bool,
                  skips: Skips) -> SourceImage:
    root, lines = parse_xml(xml)
    if root.tag != "annotation":
        raise VigilError(f"root element is <{root.tag}>, not <annotation>", path=xml, line=1,
                         hint="expected Pascal VOC / LabelImg XML")
    image_path = _find_image(xml, root, src_root, images_dir)
    if image_path is None:
        raise VigilError(f"image {root.findtext('filename')!r} not found beside the XML, in JPEGImages/ or --images",
                         path=xml, line=lines.get(id(root.find("filename")), 1), field="filename",
                         hint="pass --images DIR where the images are")
    width, height = image_size(image_path, Where(xml), "filename")
    size = root.find("size")
    if size is not None and (size.findtext("width") or "").strip():
        where = Where(xml, lines.get(id(size)))
        declared = (int(number(size.findtext("width"), where, "size/width")),
                    int(number(size.findtext("height"), where, "size/height")))
        if declared != (0, 0) and declared != (width, height):
            raise where.error(f"<size> says {declared[0]}x{declared[1]} but the image is {width}x{height}", "size",
                              hint="fix <size>, or remove it to use the image's own size")
    src_rel = _source_rel(image_path, src_root, images_dir)
    rel = _out_rel(src_rel)
    xml_rel = xml.relative_to(src_root).as_posix() if src_root in xml.parents else xml.name
    out = SourceImage(image_path, f"images/{rel}", src_rel, width, height, group=str(Path(rel).with_suffix("")),
                      fields={"annotation": xml_rel})
    for k, obj in enumerate(root.iter("object"), start=1):
        where = Where(xml, lines.get(id(obj)), item=f"object {k}")
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise where.error("object has no <name>", "name")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise where.error("object has no <bndbox>", "bndbox")
        coords = {}
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            node = bnd.find(tag)
            at = Where(xml, lines.get(id(node), where.line), item=f"object {k}")
            if node is None or not (node.text or "").strip():
                raise at.error(f"<{tag}> is missing or empty", f"bndbox/{tag}")
            coords[tag] = number(node.text.strip(), at, f"bndbox/{tag}")
        shift = 1.0 if pixels == "voc" else 0.0  # VOC: 1-based inclusive pixel indices; LabelImg: 0-based edges
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
        if (obj.findtext("pose") or "").strip():
            attrs["pose"] = obj.findtext("pose").strip()
        out.boxes.append(SourceBox(name, x, y, w, h, attrs))
    return out


def read_voc(src: Path, images_dir: Path | None = None, pixels: str = "labelimg", clip: bool = False) -> SourceDataset:
    if pixels not in PIXELS:
        raise VigilError(f"--pixels {pixels!r} is not one of {PIXELS}", field="--pixels")
    xmls = sorted(p for p in Path(src).rglob("*.xml") if p.is_file())
    if not xmls:
        raise VigilError("no .xml annotation files found", path=src, hint="point at the folder holding the XML files")
    skips = Skips()
    images = [read_voc_file(x, Path(src), images_dir, pixels, clip, skips) for x in progress(xmls, desc="read voc")]
    classes = sorted({b.cls for im in images for b in im.boxes})
    return SourceDataset("voc", Path(src), images, classes, skips=skips, notes={"voc": {"pixels": pixels}})
