"""benchmarks/dvc_layout.py: the generated tree, the tar shards and their index, and (slow) one real run."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from vigil.data.layout import label_rel_for, list_images, list_label_files, read_labels

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import dvc_layout  # noqa: E402


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tree_is_vigils_layout_seeded_and_distinct(tmp_path: Path) -> None:
    folders = dvc_layout.generate_tree(tmp_path / "a", 200, folders=3, seed=7)
    assert folders == ["s000", "s001", "s002"]
    files = files_of(tmp_path / "a")
    assert len(files) == 200
    images, labels = list_images(tmp_path / "a"), list_label_files(tmp_path / "a")
    assert len(images) == 100 and len(labels) == 100
    assert (
        sorted(label_rel_for(i) for i in images) == labels
    )  # every image has its label, vigil's rule
    assert {Path(i).parts[1] for i in images} == set(folders)
    assert [sum(1 for i in images if f"/{f}/" in i) for f in folders] == [34, 33, 33]
    assert len(set(files.values())) == 200  # distinct bytes: DVC stores N objects, not a few
    assert all(files[i].startswith(b"\xff\xd8") for i in images)
    for rel in labels:
        (box,) = read_labels(tmp_path / "a" / rel)
        assert 0 <= box.cls < 3 and 0 < box.w <= 0.5 and 0 <= box.cx - box.w / 2
    dvc_layout.generate_tree(tmp_path / "b", 200, folders=3, seed=7)
    assert files_of(tmp_path / "b") == files
    dvc_layout.generate_tree(tmp_path / "c", 200, folders=3, seed=8)
    assert files_of(tmp_path / "c").keys() == files.keys() and files_of(tmp_path / "c") != files


def test_tree_size_must_be_even(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        dvc_layout.generate_tree(tmp_path, 201, folders=2)


def test_tar_shards_index_reads_back_every_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folders = dvc_layout.generate_tree(data, 200, folders=4, seed=1)
    before = files_of(data)
    assert dvc_layout.pack_tars(data, folders, data / "shards") == 200
    assert sorted(p.name for p in (data / "shards").iterdir()) == [
        "index.jsonl",
        "s000.tar",
        "s001.tar",
        "s002.tar",
        "s003.tar",
    ]
    assert not (data / "images" / "s000").exists()  # the loose files are gone
    index = [
        json.loads(line) for line in (data / "shards" / "index.jsonl").read_text().splitlines()
    ]
    assert [r["path"] for r in index] == sorted(before)
    assert {r["path"]: dvc_layout.read_member(data / "shards", r) for r in index} == before
    # packing is deterministic (no mtimes, owners): the same tree gives the same tar bytes
    other = tmp_path / "other"
    dvc_layout.generate_tree(other, 200, folders=4, seed=1)
    dvc_layout.pack_tars(other, folders, other / "shards")
    digest = [
        hashlib.sha256((d / "shards/s002.tar").read_bytes()).hexdigest() for d in (data, other)
    ]
    assert digest[0] == digest[1]


def test_outputs_per_layout() -> None:
    assert dvc_layout.outputs("flat", ["s000", "s001"]) == ["data"]
    assert dvc_layout.outputs("shards", ["s000", "s001"]) == [
        "data/images/s000",
        "data/labels/s000",
        "data/images/s001",
        "data/labels/s001",
    ]
    assert dvc_layout.outputs("tar", ["s000"]) == ["data/shards"]
    with pytest.raises(ValueError):
        dvc_layout.outputs("zip", [])


@pytest.mark.slow
def test_one_small_run_measures_every_layout_and_cleans_up(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "r" / "dvc_layout.md"
    rows = dvc_layout.main(
        ["--n", "200", "--folders", "4", "--jobs", "2", "--remotes", "local,s3", "--s3-n", "100"]
        + ["--report", str(out), "--workdir", str(work)]
    )
    assert [(r.layout, r.remote, r.n) for r in rows] == [
        ("flat", "local", 200),
        ("shards", "local", 200),
        ("tar", "local", 200),
        ("flat", "local", 100),
        ("flat", "s3", 100),
        ("shards", "local", 100),
        ("shards", "s3", 100),
        ("tar", "local", 100),
        ("tar", "s3", 100),
    ]
    assert [r.outs for r in rows[:3]] == [1, 8, 1]
    for r in rows:
        if r.remote == "s3":  # the same tree as the row above: pushed and pulled again
            assert set(r.times) == {"push", "pull"}
            continue
        expected = {"add", "status", "push", "pull", "add +1%", "push +1%"}
        assert set(r.times) == expected | ({"prepare"} if r.layout == "tar" else set())
        assert all(t > 0 for t in r.times.values())
    text = out.read_text()
    assert "| shards | local | 200 | 8 |" in text and "| tar | s3 | 100 | 1 |" in text
    assert "dvc 3." in text and "cores" in text and "load average" in text
    assert list(work.iterdir()) == []  # the temporary folder is gone
