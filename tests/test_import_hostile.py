"""Careless and hostile sources: one clear error (exit 2), nothing written, nothing outside --out touched.

One test per defect class of issue 12 (paths out of the source, what --force may replace, temps, the
output lock, the image checks, class names, bad text and structure); each builds its input here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from import_helpers import assert_refused, classes, manifest, png_header, run, snapshot, write_image
from test_import_coco import coco
from test_import_visdrone import SPLIT, visdrone
from test_import_voc import TRUTH, labelimg_folder, xml
from test_import_yolo import yolo_folder
from vigil.data.importers.common import SourceDataset, SourceImage
from vigil.data.importers.output import MARKER
from vigil.data.importers.writer import ImportOptions, write_dataset
from vigil.errors import VigilError
from vigil.params import ValidateParams, load_section

REPO = Path(__file__).resolve().parents[1]
VIGIL = [
    sys.executable,
    "-c",
    "import sys; from vigil.cli import app; sys.argv[0] = 'vigil'; app()",
]


# --- 2. every path a source names, and every file it reads, stays inside its root -------------------------


@pytest.mark.parametrize(
    "filename", ["../../outside.jpg", "ABS", "link/../../outside.jpg", "sub/../../outside.jpg"]
)
def test_voc_filename_cannot_leave_the_source(tmp_path: Path, filename: str) -> None:
    src = labelimg_folder(tmp_path / "proj" / "src")
    write_image(tmp_path / "outside.jpg", 64, 48, seed=7)
    (src / "deep/er").mkdir(parents=True)
    (src / "link").symlink_to(
        src / "deep/er"
    )  # inside the source: link/../.. climbs out of the source by name
    name = str(tmp_path / "outside.jpg") if filename == "ABS" else filename
    (src / "a.xml").write_text(
        xml("a.jpg", TRUTH["a.jpg"], "labelimg").replace("<filename>a.jpg", f"<filename>{name}")
    )
    before = snapshot(tmp_path)
    out = tmp_path / "proj" / "out"
    assert_refused(
        run("data", "import", "voc", src, "--out", out),
        out,
        "a.xml:3",
        "[filename]",
        "absolute or climbs out",
    )
    assert snapshot(tmp_path) == before


def test_voc_image_symlinked_out_of_the_source_is_refused(tmp_path: Path) -> None:
    src = labelimg_folder(tmp_path / "src")
    write_image(tmp_path / "secret.jpg", 64, 48, seed=9)
    (src / "a.jpg").unlink()
    (src / "a.jpg").symlink_to(tmp_path / "secret.jpg")
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "voc", src, "--out", out),
        out,
        "a.xml",
        "[filename]",
        "resolves outside",
    )


def test_coco_symlink_out_of_images_and_a_symlink_loop_are_refused(tmp_path: Path) -> None:
    instances = coco(tmp_path)
    write_image(tmp_path / "elsewhere/x.png", 50, 40, seed=3)
    (tmp_path / "imgs/c.png").unlink()
    (tmp_path / "imgs/c.png").symlink_to(tmp_path / "elsewhere/x.png")
    out = tmp_path / "out"
    args = ("data", "import", "coco", instances, "--images", tmp_path / "imgs", "--out", out)
    assert_refused(run(*args), out, "instances.json", "[image id=7 file_name]", "resolves outside")
    (tmp_path / "imgs/c.png").unlink()
    (tmp_path / "imgs/c.png").symlink_to(tmp_path / "imgs/c.png")  # a loop
    assert_refused(
        run(*args), out, "instances.json", "[image id=7 file_name]", "cannot be resolved"
    )


@pytest.mark.parametrize("what", ["image", "label", "classes.txt", "folder"])
def test_yolo_symlink_out_of_the_source_is_refused(tmp_path: Path, what: str) -> None:
    src = yolo_folder(tmp_path / "src")
    elsewhere = tmp_path / "elsewhere"
    write_image(elsewhere / "x.png", 40, 30, seed=5)
    (elsewhere / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    target = {
        "image": src / "images/val/empty.png",
        "label": src / "labels/train/a.txt",
        "classes.txt": src / "classes.txt",
        "folder": src / "images/linked",
    }[what]
    if target.exists():
        target.unlink()
    target.symlink_to(
        {
            "image": elsewhere / "x.png",
            "label": elsewhere / "x.txt",
            "classes.txt": elsewhere / "x.txt",
            "folder": elsewhere,
        }[what]
    )
    out = tmp_path / "out"
    assert_refused(run("data", "import", "yolo", src, "--out", out), out, "resolves outside")


def test_merge_input_linking_out_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "a"
    assert run("data", "import", "yolo", yolo_folder(tmp_path / "y"), "--out", good).exit_code == 0
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret/k.json").write_text("{}")
    (good / "calibration").mkdir()
    (good / "calibration/k.json").symlink_to(tmp_path / "secret/k.json")
    out = tmp_path / "m"
    assert_refused(
        run("data", "merge", good, "--out", out), out, "calibration/k.json", "resolves outside"
    )


def test_writer_refuses_an_output_path_out_of_images(tmp_path: Path) -> None:
    """The writer's own net: whatever a reader produced, nothing is written outside --out."""
    write_image(tmp_path / "src/a.png", 20, 20)
    image = SourceImage(tmp_path / "src/a.png", "images/../../escaped.png", "a.png", 20, 20, "g")
    validate = load_section(REPO / "params.yaml", "validate", ValidateParams)
    with pytest.raises(VigilError, match="would leave images/"):
        write_dataset(
            SourceDataset("yolo", tmp_path / "src", [image], ["a"]),
            ImportOptions(out=tmp_path / "out", validate=validate),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


# --- 3. --force, temps, the lock: never lose user data ----------------------------------------------------


def test_force_never_replaces_a_folder_that_holds_an_input(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    first = run(
        "data", "import", "coco", coco(tmp_path), "--images", tmp_path / "imgs", "--out", proj
    )
    assert first.exit_code == 0, first.output
    instances = coco(proj)  # the user keeps their source inside the (vigil-written) folder
    before = snapshot(proj)
    result = run(
        "data", "import", "coco", instances, "--images", proj / "imgs", "--out", proj, "--force"
    )
    assert result.exit_code == 2 and "holds the input" in result.output, result.output
    assert snapshot(proj) == before
    a, b = tmp_path / "P/A", tmp_path / "P/B"
    for folder, seed_dir in ((a, "ya"), (b, "yb")):
        assert (
            run(
                "data", "import", "yolo", yolo_folder(tmp_path / seed_dir), "--out", folder
            ).exit_code
            == 0
        )
    (tmp_path / "P" / MARKER).write_text(json.dumps({"vigil": "output"}))
    before = snapshot(tmp_path / "P")
    result = run("data", "merge", a, b, "--out", tmp_path / "P", "--force")
    assert result.exit_code == 2 and "holds the input" in result.output, result.output
    assert snapshot(tmp_path / "P") == before


def test_force_replaces_only_a_folder_vigil_wrote(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    mine = tmp_path / "mine"
    (mine / "thesis").mkdir(parents=True)
    (mine / "thesis/chapter1.tex").write_text("years of work")
    before = snapshot(mine)
    result = run("data", "import", "yolo", src, "--out", mine, "--force")
    assert result.exit_code == 2 and "replaces only a folder vigil wrote" in result.output, (
        result.output
    )
    assert snapshot(mine) == before
    out = tmp_path / "out"
    assert run("data", "import", "yolo", src, "--out", out).exit_code == 0
    assert json.loads((out / MARKER).read_text())["written_by"] == "vigil data import yolo"
    (out / "stale.txt").write_text("from an earlier import")
    again = run("data", "import", "yolo", src, "--out", out, "--force")
    assert again.exit_code == 0, again.output
    assert not (out / "stale.txt").exists() and classes(out) == ["cat", "dog"]
    sample = tmp_path / "sample"  # written by build-sample before the marker existed
    sample.mkdir()
    (sample / "PROVENANCE.json").write_text(json.dumps({"builder": "vigil data build-sample (…)"}))
    assert run("data", "import", "yolo", src, "--out", sample, "--force").exit_code == 0


def test_user_files_named_like_temps_survive_and_nothing_is_left_beside_out(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    (tmp_path / ".out.notes.tmp").write_text("mine")
    (tmp_path / ".out.drafts.tmp").mkdir()
    (tmp_path / ".out.drafts.tmp/d.txt").write_text("mine too")
    result = run("data", "import", "yolo", src, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".out.notes.tmp").read_text() == "mine"
    assert (tmp_path / ".out.drafts.tmp/d.txt").read_text() == "mine too"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".out.drafts.tmp",
        ".out.notes.tmp",
        "out",
        "src",
    ]


def test_symlinked_out_is_written_where_it_points_without_debris(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    (tmp_path / "links/out").symlink_to(tmp_path / "real/data")
    for _ in range(2):
        result = run("data", "import", "yolo", src, "--out", tmp_path / "links/out", "--force")
        assert result.exit_code == 0, result.output
    assert (tmp_path / "links/out").is_symlink() and classes(tmp_path / "links/out") == [
        "cat",
        "dog",
    ]
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["data"]
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["out"]


def test_a_second_writer_of_the_same_out_is_refused(tmp_path: Path) -> None:
    """Two real processes: one holds the output lock (as an import does while it runs), the other imports."""
    src = yolo_folder(tmp_path / "src")
    out = tmp_path / "out"
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from pathlib import Path
        from vigil.atomic import output_lock
        with output_lock(Path({str(out)!r})):
            Path({str(ready)!r}).write_text("locked")
            time.sleep(60)
    """),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
        second = subprocess.run(
            [*VIGIL, "data", "import", "yolo", str(src), "--out", str(out)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        assert "another vigil process is writing this output" in second.stderr
        assert "Traceback" not in second.stderr and not out.exists()
    finally:
        holder.kill()
        holder.wait()
    third = subprocess.run(
        [*VIGIL, "data", "import", "yolo", str(src), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 0, third.stderr  # a killed holder's lock is free again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "ready", "src"]


def test_two_concurrent_imports_leave_one_complete_dataset(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    out = tmp_path / "out"
    args = [*VIGIL, "data", "import", "yolo", str(src), "--out", str(out), "--force"]
    procs = [
        subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=180), p.stderr.read() if p.stderr else "") for p in procs]
    for code, err in results:
        assert code in (0, 2) and "Traceback" not in err, err
        assert code == 0 or "another vigil process is writing" in err, err
    assert any(code == 0 for code, _ in results)
    assert sorted(manifest(out)) == sorted(
        p.relative_to(out).as_posix() for p in (out / "images").rglob("*.*")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


# --- 4. the same image checks as `vigil data check`, before anything is written ---------------------------


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("bomb", "header claims 100000x100000"),
        ("above_max_side", "header claims 9000x20"),
        ("truncated", "does not decode"),
        ("not_an_image", "cannot be read"),
    ],
)
def test_image_checks_run_before_anything_is_written(
    tmp_path: Path, case: str, fragment: str
) -> None:
    src = yolo_folder(tmp_path / "src")
    bad = src / "images/val/empty.png"
    whole = bad.read_bytes()
    bad.write_bytes(
        {
            "bomb": png_header(100_000, 100_000),
            "above_max_side": png_header(9000, 20),
            "truncated": whole[:60],
            "not_an_image": b"#!/bin/sh\necho hi\n",
        }[case]
    )
    out = tmp_path / "out"
    result = run("data", "import", "yolo", src, "--out", out)
    assert_refused(result, out, "empty.png", fragment)
    assert "DecompressionBomb" not in result.output


def test_coco_mask_on_a_bomb_header_is_refused_before_decoding(tmp_path: Path) -> None:
    instances = coco(tmp_path)
    (tmp_path / "imgs/c.png").write_bytes(png_header(100_000, 100_000))
    data = json.loads(instances.read_text())
    data["images"][2].update(width=100_000, height=100_000)
    data["annotations"].append(
        {"id": 99, "image_id": 7, "category_id": 1, "segmentation": [[0, 0, 99999, 0, 5, 99999]]}
    )
    instances.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "coco", instances, "--images", tmp_path / "imgs", "--out", out),
        out,
        "c.png",
        "header claims 100000x100000",
    )


@pytest.mark.parametrize(
    "where", ["coco", "coco_surrogate", "voc", "yolo_classes", "yolo_yaml", "class_map"]
)
def test_class_names_with_line_breaks_or_control_characters_are_refused(
    tmp_path: Path, where: str
) -> None:
    out = tmp_path / "out"
    if where == "coco":
        instances = coco(
            tmp_path,
            categories=[
                {"id": 3, "name": "car\nperson"},
                {"id": 1, "name": "person"},
                {"id": 11, "name": "dog"},
            ],
        )
        args = ["coco", instances, "--images", tmp_path / "imgs"]
        fragments = ["instances.json", "[categories[0] name]", "holds control characters"]
    elif where == "coco_surrogate":  # JSON can spell a lone surrogate, which no UTF-8 file can hold
        instances = coco(tmp_path)
        instances.write_text(instances.read_text().replace('"name": "dog"', '"name": "d\\ud800g"'))
        args = ["coco", instances, "--images", tmp_path / "imgs"]
        fragments = ["instances.json", "[categories[2] name]", "lone surrogate"]
    elif where == "voc":
        src = labelimg_folder(tmp_path / "src")
        (src / "b.xml").write_text(xml("b.png", [("car\u2028x", (33, 20, 7, 9), 0, 0)], "labelimg"))
        args, fragments = ["voc", src], ["b.xml", "object 1 name", "holds control characters"]
    elif where == "yolo_classes":
        src = yolo_folder(tmp_path / "src")
        (src / "classes.txt").write_text(
            "cat\x0cdog\ndog\n"
        )  # a form feed: str.splitlines() splits there
        args, fragments = ["yolo", src], ["classes.txt:1", "holds control characters"]
    elif where == "yolo_yaml":
        src = yolo_folder(tmp_path / "src")
        (src / "classes.txt").unlink()
        (src / "data.yaml").write_text('names: ["cat", "d\\x00og"]\n')
        args, fragments = ["yolo", src], ["data.yaml", "[names[1]]", "holds control characters"]
    else:
        src = yolo_folder(tmp_path / "src")
        cmap = tmp_path / "map.yaml"
        cmap.write_text('cat: "feline\\nanimal"\n')
        args, fragments = (
            ["yolo", src, "--class-map", cmap],
            ["map.yaml", "[cat]", "holds control characters"],
        )
    assert_refused(run("data", "import", *args, "--out", out), out, *fragments)


# --- 6. one clear line for bad text and bad structure ------------------------------------------------------


@pytest.mark.parametrize(
    "what", ["classes", "label", "visdrone", "metadata_jsonl", "metadata_csv", "class_map"]
)
def test_text_that_is_not_utf8_is_one_clear_error(tmp_path: Path, what: str) -> None:
    out = tmp_path / "out"
    latin1 = "caf\xe9\n".encode("latin-1")
    if what == "visdrone":
        src = visdrone(tmp_path / "vd")
        (src / SPLIT / "annotations/0000002_00448_d_0000015.txt").write_bytes(
            b"1,1,78,58,1,6,0,0\n" + latin1
        )
        args, fragments = ["visdrone", src], ["0000002_00448_d_0000015.txt:2", "not UTF-8"]
    else:
        src = yolo_folder(tmp_path / "src")
        args, fragments = ["yolo", src], ["not UTF-8"]
        if what == "classes":
            (src / "classes.txt").write_bytes(b"cat\n" + latin1)
            fragments.append("classes.txt:2")
        elif what == "label":
            (src / "labels/val/b.txt").write_bytes(b"0 0.5 0.5 0.1 0.1 \xff\n")
            fragments.append("b.txt:1")
        elif what.startswith("metadata"):
            side = tmp_path / ("m.jsonl" if what == "metadata_jsonl" else "m.csv")
            side.write_bytes(
                b"image,driver_id\na.png,d1\n" + latin1
                if what == "metadata_csv"
                else b'{"image": "a.png"}\n{"image": "' + latin1.strip() + b'"}\n'
            )
            args += ["--metadata", side]
            fragments += [f"{side.name}:{3 if what == 'metadata_csv' else 2}"]
        else:
            cmap = tmp_path / "map.yaml"
            cmap.write_bytes(b"cat: " + latin1)
            args += ["--class-map", cmap]
            fragments.append("map.yaml:1")
    assert_refused(run("data", "import", *args, "--out", out), out, *fragments)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("names: [cat, dog\n", "not valid YAML/JSON"),
        ("- cat\n- dog\n", "a YAML list, not a mapping"),
        ("names: {0: cat, '1': dog}\n", "are not the class ids"),
        ("names: {0: cat, 2: dog}\n", "are not the class ids"),
        ("names: !!python/object/apply:os.system ['touch PWNED']\n", "no !!python tags"),
        ("names: [cat, [dog]]\n", "is not text"),
    ],
)
def test_bad_yolo_data_yaml(tmp_path: Path, text: str, fragment: str) -> None:
    src = yolo_folder(tmp_path / "src")
    (src / "classes.txt").unlink()
    (src / "data.yaml").write_text(text)
    out = tmp_path / "out"
    assert_refused(run("data", "import", "yolo", src, "--out", out), out, "data.yaml", fragment)
    assert not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "change, fragments",
    [
        (
            {"images": [{"id": [1], "file_name": "a.jpg"}]},
            ["[image id=[1] id]", "is not a number or a string"],
        ),
        (
            {
                "annotations": [
                    {"id": 5, "image_id": {"a": 1}, "category_id": 1, "bbox": [1, 1, 2, 2]}
                ]
            },
            ["[annotation id=5 image_id]", "is not a number or a string"],
        ),
        (
            {"annotations": [{"id": 5, "image_id": 1, "category_id": [1], "bbox": [1, 1, 2, 2]}]},
            ["[annotation id=5 category_id]", "is not a number or a string"],
        ),
        (
            {
                "annotations": [
                    {
                        "id": 5,
                        "image_id": 1,
                        "category_id": 1,
                        "segmentation": {"size": 48, "counts": "abc"},
                    }
                ]
            },
            ["[annotation id=5 segmentation.size]", "is not the image's"],
        ),
    ],
)
def test_bad_coco_structure(
    tmp_path: Path, change: dict[str, object], fragments: list[str]
) -> None:
    out = tmp_path / "out"
    assert_refused(
        run(
            "data",
            "import",
            "coco",
            coco(tmp_path, **change),
            "--images",
            tmp_path / "imgs",
            "--out",
            out,
        ),
        out,
        "instances.json",
        *fragments,
    )


def test_coco_json_nested_100000_deep(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp_path / "imgs").mkdir()
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "coco", path, "--images", tmp_path / "imgs", "--out", out),
        out,
        "deep.json",
        "nested too deep",
    )


@pytest.mark.parametrize(
    "mode_config, fragment",
    [
        ("{broken", "not valid JSON"),
        ("[1, 2]", "mode None is not one of"),
        ('{"mode": "cubes"}', "'cubes'"),
    ],
)
def test_merge_refuses_a_broken_mode_config(
    tmp_path: Path, mode_config: str, fragment: str
) -> None:
    a = tmp_path / "a"
    assert run("data", "import", "yolo", yolo_folder(tmp_path / "y"), "--out", a).exit_code == 0
    (a / ".mode_config.json").write_text(mode_config)
    out = tmp_path / "m"
    assert_refused(run("data", "merge", a, "--out", out), out, ".mode_config.json", fragment)


def test_merge_refuses_a_manifest_line_without_image(tmp_path: Path) -> None:
    a = tmp_path / "a"
    assert run("data", "import", "yolo", yolo_folder(tmp_path / "y"), "--out", a).exit_code == 0
    with open(a / "manifest.jsonl", "a") as handle:
        handle.write(json.dumps({"driver_id": "d"}) + "\n")
    out = tmp_path / "m"
    assert_refused(
        run("data", "merge", a, "--out", out), out, "manifest.jsonl:4", "[image]", "missing"
    )


def test_unwritable_out_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = yolo_folder(tmp_path / "src")
    result = run("data", "import", "yolo", src, "--out", "/proc/vigil-import/out")
    assert (
        result.exit_code == 2 and "[--out]" in result.output and "Traceback" not in result.output
    ), result.output
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (".", str(tmp_path)):
        result = run("data", "import", "yolo", src, "--out", out, "--force")
        assert result.exit_code == 2 and "is the current folder or holds it" in result.output, (
            result.output
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "work"] and not any(work.iterdir())


# --- 7. an empty VisDrone annotations/ is refused, not a 0-image dataset ---------------------------------


def test_visdrone_without_annotation_files_is_refused(tmp_path: Path) -> None:
    src = visdrone(tmp_path / "vd")
    for ann in (src / SPLIT / "annotations").iterdir():
        ann.unlink()
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "visdrone", src, "--out", out),
        out,
        "annotations [annotations]",
        "no annotation files",
    )


def test_nothing_outside_out_is_touched_by_a_failed_import(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    (src / "labels/val/b.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    before = snapshot(tmp_path)
    out = tmp_path / "new/deeper/out"
    assert_refused(run("data", "import", "yolo", src, "--out", out), out, "b.txt:1", "class id 7")
    assert snapshot(tmp_path) == before  # not even the parent folders made for --out are left


def test_no_leftover_lock_or_temp_on_success(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    assert run("data", "import", "yolo", src, "--out", tmp_path / "out").exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["out", "src"]


def test_yolo_own_manifest_nested_too_deep(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    (src / "manifest.jsonl").write_text(
        '{"image": "images/train/a.png", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    )
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "yolo", src, "--out", out), out, "manifest.jsonl", "nested too deep"
    )


@pytest.mark.parametrize("fmt", ["yolo", "visdrone"])
def test_a_pipe_where_a_file_belongs_is_refused_not_skipped(tmp_path: Path, fmt: str) -> None:
    """A FIFO label would read as "no objects" (or hang): refused, as not a regular file."""
    if fmt == "yolo":
        src = yolo_folder(tmp_path / "src")
        fifo = src / "labels/val/b.txt"
    else:
        src = visdrone(tmp_path / "vd")
        fifo = src / SPLIT / "annotations/0000002_00448_d_0000015.txt"
    fifo.unlink()
    os.mkfifo(fifo)
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", fmt, src, "--out", out), out, fifo.name, "not a regular file"
    )
