"""VOC / LabelImg importer: both pixel conventions, XML without <size>, flags kept, bad input refused."""

from __future__ import annotations

from pathlib import Path

from import_helpers import (
    Px,
    assert_boxes,
    assert_refused,
    boxes_px,
    check_passes,
    classes,
    manifest,
    run,
    write_image,
)

TRUTH: dict[
    str, list[tuple[str, Px, int, int]]
] = {  # image → (class, 0-based pixel box, truncated, difficult)
    "a.jpg": [
        ("person", (10, 5, 20, 15), 0, 0),
        ("car", (0, 0, 64, 48), 1, 0),
    ],  # second one touches every edge
    "b.png": [("car", (33, 20, 7, 9), 0, 1)],
}
SIZES = {"a.jpg": (64, 48), "b.png": (50, 40)}


def xml(
    name: str,
    objects: list[tuple[str, Px, int, int]],
    convention: str,
    size: bool = True,
    xmin: str | None = None,
) -> str:
    shift = 1 if convention == "voc" else 0
    w, h = SIZES[name]
    parts = [f"<annotation>\n  <folder>x</folder>\n  <filename>{name}</filename>\n"]
    if size:
        parts.append(
            f"  <size>\n    <width>{w}</width>\n    <height>{h}</height>\n    <depth>3</depth>\n  </size>\n"
        )
    for cls, (x, y, bw, bh), trunc, diff in objects:
        parts.append(
            f"  <object>\n    <name>{cls}</name>\n    <pose>Unspecified</pose>\n"
            f"    <truncated>{trunc}</truncated>\n    <difficult>{diff}</difficult>\n    <bndbox>\n"
            f"      <xmin>{xmin if xmin is not None else x + shift}</xmin>\n      <ymin>{y + shift}</ymin>\n"
            f"      <xmax>{x + bw}</xmax>\n      <ymax>{y + bh}</ymax>\n    </bndbox>\n  </object>\n"
        )
    return "".join(parts) + "</annotation>\n"


def labelimg_folder(root: Path, **kwargs: object) -> Path:
    """LabelImg: each XML beside its image; b.xml has no <size>."""
    for i, (name, objects) in enumerate(TRUTH.items()):
        write_image(root / name, *SIZES[name], seed=i)
        (root / name).with_suffix(".xml").write_text(
            xml(name, objects, "labelimg", size=name != "b.png", **kwargs)
        )
    return root


def voc_folder(root: Path) -> Path:
    """VOC devkit: Annotations/*.xml and JPEGImages/*, 1-based inclusive pixel coordinates."""
    for i, (name, objects) in enumerate(TRUTH.items()):
        write_image(root / "JPEGImages" / name, *SIZES[name], seed=i)
        (root / "Annotations" / name).with_suffix(".xml").parent.mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / name).with_suffix(".xml").write_text(xml(name, objects, "voc"))
    return root


def check_truth(out: Path) -> None:
    assert classes(out) == ["car", "person"]
    m = manifest(out)
    assert sorted(m) == ["images/a.jpg", "images/b.png"]
    for name, objects in TRUTH.items():
        assert_boxes(out, f"images/{name}", [(c, box) for c, box, _, _ in objects])
        record = m[f"images/{name}"]
        assert record["objects"]["truncated"] == [t for *_, t, _ in objects]
        assert record["objects"]["difficult"] == [d for *_, d in objects]
        assert (record["width"], record["height"]) == SIZES[name]


def test_labelimg_default_convention_and_missing_size(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "voc",
        labelimg_folder(tmp_path / "src"),
        "--out",
        out,
        "--defaults",
        "stream=stills",
        "--defaults",
        "scenario=dusk,road_type=street",
    )
    assert result.exit_code == 0, result.output
    check_truth(out)
    assert manifest(out)["images/a.jpg"]["objects"]["pose"] == ["Unspecified", "Unspecified"]
    check_passes(out)


def test_voc_devkit_convention(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "data", "import", "voc", voc_folder(tmp_path / "voc"), "--pixels", "voc", "--out", out
    )
    assert result.exit_code == 0, result.output
    check_truth(out)
    # read with the wrong convention, the same files are one pixel off: the flag matters
    wrong = run("data", "import", "voc", tmp_path / "voc", "--out", tmp_path / "wrong")
    assert wrong.exit_code == 0
    ((_, (x, _, w, _)),) = boxes_px(tmp_path / "wrong", "images/b.png")
    assert (round(x, 3), round(w, 3)) == (34, 6)


def test_non_numeric_coordinate_names_file_line_and_field(tmp_path: Path) -> None:
    src = labelimg_folder(tmp_path / "src", xmin="ten")
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "voc", src, "--out", out),
        out,
        "a.xml:15",
        "object 1 bndbox/xmin",
        "'ten' is not a number",
    )


def test_box_outside_image_and_missing_image(tmp_path: Path) -> None:
    src = labelimg_folder(tmp_path / "src")
    (src / "b.xml").write_text(xml("b.png", [("car", (45, 20, 30, 9), 0, 0)], "labelimg"))
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "voc", src, "--out", out),
        out,
        "b.xml:",
        "object 1 bndbox",
        "sticks out of the 50x40 image",
    )
    (src / "b.xml").write_text(xml("b.png", TRUTH["b.png"], "labelimg"))
    (src / "b.png").unlink()
    assert_refused(
        run("data", "import", "voc", src, "--out", out), out, "b.xml:3", "[filename]", "not found"
    )


def test_not_xml_and_size_mismatch(tmp_path: Path) -> None:
    src = labelimg_folder(tmp_path / "src")
    (src / "a.xml").write_text(
        xml("a.jpg", TRUTH["a.jpg"], "labelimg").replace("<width>64", "<width>640")
    )
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "voc", src, "--out", out), out, "a.xml:4", "[size]", "640x48"
    )
    (src / "a.xml").write_text("<annotation><object></annotation>")
    assert_refused(
        run("data", "import", "voc", src, "--out", out), out, "a.xml:1", "not well-formed XML"
    )
