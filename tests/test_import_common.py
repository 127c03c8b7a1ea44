"""Shared importer parts: class map, --defaults, the metadata side file, --out safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from import_helpers import assert_refused, manifest, run
from test_import_yolo import yolo_folder
from vigil.data.importers.common import load_class_map
from vigil.data.importers.metadata import load_metadata, parse_defaults
from vigil.errors import VigilError


def test_class_map_rename_merge_drop_and_order(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"3": "vehicle", "truck": "vehicle", "person": "human", "*": null}')
    cmap = load_class_map(path)
    aliases = {"1": "person", "3": "car", "7": "truck", "9": "dog"}
    assert cmap.classes(["person", "car", "truck", "dog"], aliases) == ["vehicle", "human"]
    assert [cmap.target(n, [a for a, m in aliases.items() if m == n]) for n in ("car", "dog")] == [
        "vehicle",
        None,
    ]
    assert load_class_map(None).classes(["a", "b"], {}) == ["a", "b"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[1, 2]", "non-empty mapping"),
        ("car: [1]", "must be a class name or null"),
        ("'*': other", "`*` may only map to null"),
        ("car: 'a", "not valid YAML/JSON"),
    ],
)
def test_bad_class_map(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(VigilError, match="m.yaml") as info:
        load_class_map(path)
    assert fragment in str(info.value)


def test_defaults_parsing() -> None:
    assert parse_defaults(["stream=cctv, scenario=day", "road_type=street"]) == {
        "stream": "cctv",
        "scenario": "day",
        "road_type": "street",
    }
    with pytest.raises(VigilError, match=r"\[--defaults\]: 'stream' is not KEY=VALUE"):
        parse_defaults(["stream"])
    with pytest.raises(VigilError, match="'image' cannot be given a default"):
        parse_defaults(["image=x.jpg"])


def test_metadata_jsonl_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "meta.jsonl"
    path.write_text(
        '{"image": "a.png", "driver_id": 4, "weather": "rain"}\n\n{"file_name": "b.png"}\n'
    )
    assert load_metadata(path) == {"a.png": {"driver_id": 4, "weather": "rain"}, "b.png": {}}
    path.write_text('{"image": "a.png"}\n{"image": "a.png"}\n')
    with pytest.raises(VigilError, match=r"meta.jsonl:2 \[image\]: image 'a.png' appears twice"):
        load_metadata(path)
    path.write_text('{"image": "a.png"}\n{oops\n')
    with pytest.raises(VigilError, match=r"meta.jsonl:2: not valid JSON"):
        load_metadata(path)
    path.write_text('{"driver_id": "d"}\n')
    with pytest.raises(VigilError, match=r"meta.jsonl:1 \[image\]: row has no image key"):
        load_metadata(path)


def test_metadata_by_file_name_fills_groups_and_extras(tmp_path: Path) -> None:
    side = tmp_path / "meta.jsonl"
    side.write_text(
        '{"image": "a.png", "driver_id": "d1", "vehicle_id": 9, "weather": "rain"}\n'
        '{"image": "nothing.png", "driver_id": "x"}\n'
    )
    out = tmp_path / "out"
    result = run(
        "data", "import", "yolo", yolo_folder(tmp_path / "src"), "--out", out, "--metadata", side
    )
    assert result.exit_code == 0, result.output
    a = manifest(out)["images/train/a.png"]
    assert (a["driver_id"], a["vehicle_id"], a["weather"], a["stream"]) == (
        "d1",
        "9",
        "rain",
        "cctv",
    )
    assert "1 --metadata rows match no imported image" in result.output


def test_out_inside_source_refused(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "src")
    out = src / "converted"
    assert_refused(
        run("data", "import", "yolo", src, "--out", out), out, "[--out]", "lies inside the source"
    )


def test_named_path_and_inside_hold_every_path_to_its_root(tmp_path: Path) -> None:
    """The one helper every importer uses: by name (no `..`, not absolute) and by where it really is."""
    from vigil.data.importers.common import Where, inside, named_path, read_text

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("s")
    (root / "sub/ok.txt").write_text("ok")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "loop.txt").symlink_to(root / "loop.txt")
    where = Where(tmp_path / "source.json", item="image id=1")
    assert named_path(root, "sub/ok.txt", where, "file_name") == root / "sub/ok.txt"
    for name, fragment in [
        ("../secret.txt", "climbs out"),
        (str(tmp_path / "secret.txt"), "absolute"),
        ("link.txt", "resolves outside"),
        ("loop.txt", "cannot be resolved"),
        (["a"], "is not a file name"),
    ]:
        with pytest.raises(VigilError, match=fragment) as info:
            named_path(root, name, where, "file_name")
        assert "source.json [image id=1 file_name]" in str(info.value)
    assert inside(root, root / "sub/../sub/ok.txt", where, "f") == (root / "sub/ok.txt").resolve()
    (root / "bad.txt").write_bytes(b"fine\nstill fine\nnot \xff fine\n")
    with pytest.raises(VigilError, match=r"bad.txt:3: not UTF-8 text"):
        read_text(root / "bad.txt")
