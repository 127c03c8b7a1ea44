"""`vigil data import imagefolder`: SKU folders into the classifier layout, and every hostile source refused.

The happy path checks the layout byte for byte (classes.txt order, manifest rows, copies, provenance,
a re-run identical); each hostile class (issue 17 §5) asserts exit 2, one `error:` line naming the
file, no output and nothing outside --out changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from import_helpers import assert_refused, png_header, run, snapshot, write_image
from vigil.atomic import output_lock
from vigil.data.importers.output import MARKER

Snapshot = dict[str, tuple[int, int]]


def sku_tree(root: Path) -> Path:
    """sku_fanta (2 PNG), sku_cola (2 JPEG, one in an instance subfolder), stray files to skip."""
    write_image(root / "sku_fanta/shelf1_0001.png", 24, 16, seed=1)
    write_image(root / "sku_fanta/shelf2_0002.png", 20, 18, seed=2)
    write_image(root / "sku_cola/shelf1_0003.jpg", 32, 24, seed=3)
    write_image(root / "sku_cola/inst7/shelf2_0004.jpg", 16, 12, seed=4)
    (root / "README.txt").write_text("shelf photos, March")
    (root / "sku_cola/.DS_Store").write_bytes(b"\x00\x01")
    write_image(root / "sku_fanta/.ipynb_checkpoints/shelf1_0001.png", 24, 16, seed=1)
    (root / "sku_fanta/notes.csv").write_text("a,b\n")
    return root


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def rows(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_happy_path_layout_byte_for_byte_and_rerun_identical(tmp_path: Path) -> None:
    src, out = sku_tree(tmp_path / "src"), tmp_path / "out"
    result = run("data", "import", "imagefolder", src, "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "classes.txt").read_bytes() == b"sku_cola\nsku_fanta\n"
    expected = []
    for sku_id, sku, inner, (w, h) in [
        (0, "sku_cola", "inst7/shelf2_0004.jpg", (16, 12)),
        (0, "sku_cola", "shelf1_0003.jpg", (32, 24)),
        (1, "sku_fanta", "shelf1_0001.png", (24, 16)),
        (1, "sku_fanta", "shelf2_0002.png", (20, 18)),
    ]:
        data = (src / sku / inner).read_bytes()
        assert (out / "images" / sku / inner).read_bytes() == data
        expected.append(
            {
                "class": sku,
                "class_id": sku_id,
                "group": f"{sku}/{inner.rsplit('.', 1)[0]}",
                "height": h,
                "image": f"images/{sku}/{inner}",
                "sha256": hashlib.sha256(data).hexdigest(),
                "source": f"imagefolder:{sku}/{inner}",
                "width": w,
            }
        )
    assert rows(out) == expected
    assert sorted(files(out)) == sorted(
        [".mode_config.json", MARKER, "PROVENANCE.json", "classes.txt", "manifest.jsonl"]
        + [str(r["image"]) for r in expected]
    )  # the stray files were not copied
    provenance = json.loads((out / "PROVENANCE.json").read_text())
    assert provenance["importer"].startswith("vigil data import imagefolder")
    assert provenance["layout"] == "classifier"
    assert provenance["summary"]["per_class"] == {"sku_cola": 2, "sku_fanta": 2}
    assert json.loads((out / ".mode_config.json").read_text())["mode"] == "classify"
    assert json.loads((out / MARKER).read_text())["written_by"] == "vigil data import imagefolder"
    for skipped in ("README.txt", "sku_cola/.DS_Store", "sku_fanta/notes.csv"):
        assert skipped in result.output, result.output
    assert "2 × hidden file or folder" in result.output  # the folder counts once, not per file
    first = files(out)
    again = run("data", "import", "imagefolder", src, "--out", out, "--force")
    assert again.exit_code == 0, again.output
    assert files(out) == first
    assert sorted(os.listdir(tmp_path)) == ["out", "src"]  # no lock, no temp left beside it


def test_a_detection_tool_refuses_the_classifier_layout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        run("data", "import", "imagefolder", sku_tree(tmp_path / "src"), "--out", out).exit_code
        == 0
    )
    merged = tmp_path / "merged"
    assert_refused(run("data", "merge", out, "--out", merged), merged, "mode 'classify'")


def test_group_by_names_the_instance_and_every_image_must_match(tmp_path: Path) -> None:
    src, out = sku_tree(tmp_path / "src"), tmp_path / "out"
    result = run("data", "import", "imagefolder", src, "--out", out, "--group-by", r"(shelf\d)_")
    assert result.exit_code == 0, result.output
    assert [r["group"] for r in rows(out)] == ["shelf2", "shelf1", "shelf1", "shelf2"]
    before = snapshot(out)
    result = run(
        "data", "import", "imagefolder", src, "--out", out, "--force", "--group-by", r"^([^/]+)/"
    )
    assert_refused_keeping(result, out, before, "shelf1_0003.jpg", "[--group-by]", "does not match")
    bad = tmp_path / "bad"
    assert_refused(
        run("data", "import", "imagefolder", src, "--out", bad, "--group-by", "(unclosed"),
        bad,
        "[--group-by]",
        "not a regular expression",
    )


def test_metadata_fields_and_group_go_into_the_rows(tmp_path: Path) -> None:
    src, out = sku_tree(tmp_path / "src"), tmp_path / "out"
    side = tmp_path / "side.csv"
    side.write_text("image,group,store,class\nsku_cola/shelf1_0003.jpg,can-17,s4,sku_fanta\n")
    result = run("data", "import", "imagefolder", src, "--out", out, "--metadata", side)
    assert result.exit_code == 0, result.output
    row = next(r for r in rows(out) if r["image"] == "images/sku_cola/shelf1_0003.jpg")
    assert (row["group"], row["store"], row["class"]) == ("can-17", "s4", "sku_cola")


def test_coverage_below_min_per_class_is_one_warning_per_sku(tmp_path: Path) -> None:
    src, out = sku_tree(tmp_path / "src"), tmp_path / "out"
    write_image(src / "sku_cola/shelf3_0005.jpg", 16, 16, seed=5)
    result = run("data", "import", "imagefolder", src, "--out", out, "--min-per-class", "3")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: coverage: SKU sku_fanta has 2 images, below --min-per-class 3; add images or "
        "lower --min-per-class"
    ]
    again = run("data", "import", "imagefolder", src, "--out", out, "--force")
    assert again.output.count("warning: coverage:") == 2  # the default asks 300 per SKU
    off = run("data", "import", "imagefolder", src, "--out", out, "--force", "--min-per-class", "0")
    assert "warning" not in off.output, off.output


def test_the_same_bytes_twice_in_one_sku_is_a_warning(tmp_path: Path) -> None:
    src, out = sku_tree(tmp_path / "src"), tmp_path / "out"
    (src / "sku_cola/again.jpg").write_bytes((src / "sku_cola/shelf1_0003.jpg").read_bytes())
    result = run("data", "import", "imagefolder", src, "--out", out, "--min-per-class", "0")
    assert result.exit_code == 0, result.output
    assert "warning: 1 images repeat another image of the same SKU byte for byte (e.g. " in (
        result.output
    )
    assert "sku_cola/shelf1_0003.jpg = sku_cola/again.jpg" in result.output


# --- hostile sources: exit 2, one line naming the file, nothing written, nothing outside touched ---------


def assert_refused_keeping(result: Any, out: Path, before: Snapshot, *fragments: str) -> None:
    """As `assert_refused`, for an --out that existed before: it is left exactly as it was."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert snapshot(out) == before


def _hostile(src: Path, tmp_path: Path, case: str) -> tuple[Path, list[str]]:
    """Make `src` hostile in one way; return the folder to import and what the error must say."""
    cola = src / "sku_cola"
    outside = write_image(tmp_path / "elsewhere/secret.jpg", 20, 20, seed=9)
    if case == "symlink_file_out":
        (cola / "leak.jpg").symlink_to(outside)
        return src, ["leak.jpg", "resolves outside"]
    if case == "symlink_sku_out":
        (src / "sku_leak").symlink_to(outside.parent)
        return src, ["sku_leak", "resolves outside"]
    if case == "dotdot_folder_link":  # `up/..` climbs by name; a linked folder is never followed
        (cola / "up").symlink_to(src)
        return src, ["sku_cola/up", "linked folder"]
    if case == "symlink_loop":
        (cola / "loop.jpg").symlink_to(cola / "loop.jpg")
        return src, ["loop.jpg", "cannot be resolved"]
    if case == "fifo":
        os.mkfifo(cola / "pipe.jpg")
        return src, ["pipe.jpg", "not a regular file"]
    if case == "truncated":
        bad = cola / "shelf1_0003.jpg"
        bad.write_bytes(bad.read_bytes()[:200])
        return src, ["shelf1_0003.jpg", "does not decode"]
    if case == "bomb":
        (cola / "bomb.png").write_bytes(png_header(100_000, 100_000))
        return src, ["bomb.png", "header claims 100000x100000"]
    if case == "one_pixel":
        write_image(cola / "dot.png", 1, 1)
        return src, ["dot.png", "minimum side 8"]
    if case == "not_an_image":
        (cola / "run.jpg").write_bytes(b"#!/bin/sh\necho hi\n")
        return src, [
            "run.jpg",
            "(image_decode)",
        ]  # the wording differs once ultralytics is imported
    if case == "newline_in_sku":
        write_image(src / "sku_x\nsku_y/a.png", 16, 16, seed=6)
        return src, ["'sku_x\\nsku_y'", "control characters"]
    if case == "escape_in_file_name":
        write_image(cola / "a\x1b[2Jb.png", 16, 16, seed=6)
        return src, ["sku_cola", "control characters"]
    if case == "not_utf8_name":
        (Path(os.fsdecode(bytes(cola) + b"/caf\xe9.png"))).write_bytes(
            (cola / "shelf1_0003.jpg").read_bytes()
        )
        return src, ["sku_cola", "not UTF-8"]
    if case == "space_around_sku":
        write_image(src / "sku_y /a.png", 16, 16, seed=6)
        return src, ["sku_y ", "white space"]
    if case == "empty_root":
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "notes.txt").write_text("no folders here")
        return empty, ["empty", "no SKU folders"]
    if case == "empty_sku":
        (src / "sku_new").mkdir()
        (src / "sku_new/todo.txt").write_text("shoot these")
        return src, ["sku_new", "SKU folder holds no image"]
    if case == "duplicate_across_skus":
        (src / "sku_fanta/copy.jpg").write_bytes((cola / "shelf1_0003.jpg").read_bytes())
        return src, ["sku_cola/shelf1_0003.jpg", "sku_fanta/copy.jpg", "two SKU folders"]
    raise AssertionError(case)


HOSTILE = [
    "symlink_file_out",
    "symlink_sku_out",
    "dotdot_folder_link",
    "symlink_loop",
    "fifo",
    "truncated",
    "bomb",
    "one_pixel",
    "not_an_image",
    "newline_in_sku",
    "escape_in_file_name",
    "not_utf8_name",
    "space_around_sku",
    "empty_root",
    "empty_sku",
    "duplicate_across_skus",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_source_is_refused_whole(tmp_path: Path, case: str) -> None:
    src, fragments = _hostile(sku_tree(tmp_path / "src"), tmp_path, case)
    before = snapshot(tmp_path)
    out = tmp_path / "new/out"
    result = run("data", "import", "imagefolder", src, "--out", out)
    assert_refused(result, out, *fragments)
    assert "DecompressionBomb" not in result.output
    assert snapshot(tmp_path) == before  # not even the parent folder of --out was made


def test_a_second_writer_of_the_same_out_is_refused(tmp_path: Path) -> None:
    src, out = sku_tree(tmp_path / "src"), tmp_path / "out"
    with output_lock(out):  # as another import holds it while it writes
        result = run("data", "import", "imagefolder", src, "--out", out)
    assert result.exit_code == 2 and not out.exists(), result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert "another vigil process is writing this output" in result.output
    assert run("data", "import", "imagefolder", src, "--out", out).exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["out", "src"]


def test_a_file_changed_after_its_check_is_refused_mid_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes copied are the bytes checked: a swap after the decode is refused inside the write, and
    the half-built temp and the lock go with it."""
    from vigil.data.importers import imagefolder

    checked = imagefolder.decode_images

    def then_swapped(images: list[imagefolder.SkuImage], validate: object) -> None:
        checked(images, validate)  # type: ignore[arg-type]
        write_image(tmp_path / "src/sku_fanta/shelf2_0002.png", 20, 18, seed=99)

    monkeypatch.setattr(imagefolder, "decode_images", then_swapped)
    out = tmp_path / "out"
    result = run("data", "import", "imagefolder", sku_tree(tmp_path / "src"), "--out", out)
    assert_refused(result, out, "shelf2_0002.png", "changed after it was checked")
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_force_never_replaces_a_folder_vigil_did_not_write(tmp_path: Path) -> None:
    src = sku_tree(tmp_path / "src")
    mine = tmp_path / "mine"
    (mine / "thesis").mkdir(parents=True)
    (mine / "thesis/chapter1.tex").write_text("years of work")
    before, everything = snapshot(mine), snapshot(tmp_path)
    result = run("data", "import", "imagefolder", src, "--out", mine, "--force")
    assert_refused_keeping(
        result, mine, before, "mine [--out]", "replaces only a folder vigil wrote"
    )
    assert snapshot(tmp_path) == everything


@pytest.mark.parametrize("where", ["inside", "holding"])
def test_out_may_neither_lie_in_nor_hold_the_source(tmp_path: Path, where: str) -> None:
    src = sku_tree(tmp_path / "proj/src")
    before = snapshot(tmp_path)
    out = src / "imported" if where == "inside" else tmp_path / "proj"
    result = run("data", "import", "imagefolder", src, "--out", out, "--force")
    fragment = "lies inside the source" if where == "inside" else "holds the input"
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before
