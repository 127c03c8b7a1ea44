"""hash stage: sha256 per file, the files.jsonl contract, counts, the incremental cache, diffs, CLI and stage."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repo_params import write_params
from vigil.cli import app
from vigil.data import hash_cache, hashing
from vigil.data.diff import diff_manifests, entries_of
from vigil.data.hashing import FileEntry, hash_tree, read_files_manifest
from vigil.data.summary import hash_dataset, summarize
from vigil.errors import VigilError

REPO = Path(__file__).resolve().parents[1]

# A tiny canonical dataset: bytes need not be real pictures, hashing never decodes them.
FILES: dict[str, bytes] = {
    "classes.txt": b"car\nperson\n",
    "images/lab/a.jpg": b"\xff\xd8 picture a",
    "images/lab/b.jpg": b"\xff\xd8 picture bb",
    "images/pool/c.png": b"\x89PNG picture c",
    "labels/lab/a.txt": b"0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n1 0.7 0.7 0.1 0.3\n",
    "labels/lab/b.txt": b"",
    "notes/README.md": b"about this set\n",
}
RECORDS = [
    {
        "image": "images/lab/a.jpg",
        "driver_id": "d0",
        "vehicle_id": "v0",
        "stream": "cctv",
        "scenario": "day",
        "road_type": "campus",
        "labelled": True,
    },
    {
        "image": "images/lab/b.jpg",
        "driver_id": "d1",
        "vehicle_id": "v0",
        "stream": "cctv",
        "scenario": "night",
        "road_type": "street",
    },
    {
        "image": "images/pool/c.png",
        "driver_id": "d2",
        "vehicle_id": "v1",
        "stream": "stills",
        "scenario": "day",
        "road_type": "campus",
        "labelled": False,
    },
]
OLD_NS = 1_600_000_000_000_000_000  # every fixture file gets this mtime, so a later write is always newer


def make_tiny(root: Path) -> Path:
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    for path in root.rglob("*"):
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return make_tiny(tmp_path / "data set")  # a space in the path, on purpose


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file the hasher reads (the seam: hashing.sha256_file)."""
    seen: list[str] = []
    real = hashing.sha256_file

    def counting(
        path: str | Path, size_hint: int = hashing.CHUNK, keep: bool = False
    ) -> tuple[str, int, bytes | None]:
        seen.append(Path(path).as_posix())
        return real(path, size_hint, keep)

    monkeypatch.setattr(hashing, "sha256_file", counting)
    return seen


def rels(root: Path, paths: list[str]) -> list[str]:
    return sorted(Path(p).relative_to(root).as_posix() for p in paths)


def test_hashes_equal_hashlib(tiny: Path) -> None:
    result = hash_tree(tiny, workers=3)
    on_disk = {
        p.relative_to(tiny).as_posix(): p.read_bytes() for p in tiny.rglob("*") if p.is_file()
    }
    assert {e.path for e in result.entries} == set(on_disk)
    for e in result.entries:
        assert e.sha256 == hashlib.sha256(on_disk[e.path]).hexdigest()
        assert e.size == len(on_disk[e.path])


def test_large_file_read_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(hashing.CHUNK * 2 + 17)
    (tmp_path / "big.bin").write_bytes(data)
    assert hashing.sha256_file(tmp_path / "big.bin", 0) == (
        hashlib.sha256(data).hexdigest(),
        len(data),
        None,
    )
    # bytes come back only when asked, and only for a small file
    assert hashing.sha256_file(tmp_path / "big.bin", len(data), keep=True)[2] is None
    (tmp_path / "small.txt").write_bytes(b"0 0.5 0.5 0.1 0.1\n")
    assert hashing.sha256_file(tmp_path / "small.txt", 18, keep=True)[2] == b"0 0.5 0.5 0.1 0.1\n"


def test_files_manifest_format(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "files.jsonl"
    hash_dataset(tiny, files_out=out, workers=2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    assert all(list(r) == ["path", "sha256", "size", "kind"] for r in rows)
    kinds = {r["path"]: r["kind"] for r in rows}
    assert kinds == {
        "classes.txt": "classes",
        "images/lab/a.jpg": "image",
        "images/lab/b.jpg": "image",
        "images/pool/c.png": "image",
        "labels/lab/a.txt": "label",
        "labels/lab/b.txt": "label",
        "manifest.jsonl": "manifest",
        "notes/README.md": "other",
    }
    assert read_files_manifest(out) == hash_tree(tiny).entries


def test_summary_counts(tiny: Path) -> None:
    entries = hash_tree(tiny).entries
    s = summarize(tiny, entries)
    assert s["files"]["image"] == {
        "count": 3,
        "bytes": sum(len(FILES[k]) for k in FILES if k.startswith("images/")),
    }
    assert s["files"]["label"]["count"] == 2 and s["files"]["other"]["count"] == 1
    assert s["total"]["count"] == 8
    assert s["images"] == {"on_disk": 3, "in_manifest": 3, "labelled": 2, "unlabelled": 1}
    assert s["labels"] == {"files": 2, "negatives": 1, "boxes": 3}
    assert s["boxes_per_class"] == {"car": 2, "person": 1}
    assert s["images_per_class"] == {"car": 1, "person": 1}
    assert s["strata"] == {
        "stream": {"cctv": 2, "stills": 1},
        "scenario": {"day": 2, "night": 1},
        "road_type": {"campus": 2, "street": 1},
    }
    assert not any(s["unreadable"].values())
    text = "".join(f"{e.sha256}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path))
    assert s["fingerprint"] == hashlib.sha256(text.encode()).hexdigest()


def test_summary_counts_bad_lines_instead_of_failing(tiny: Path) -> None:
    with (tiny / "labels/lab/a.txt").open("a") as handle:
        handle.write("7 0.5 0.5 0.1 0.1\n")
    (tiny / "labels/lab/b.txt").write_text("not a box\n")  # unreadable, so not a negative
    with (tiny / "manifest.jsonl").open("a") as handle:
        handle.write("{broken\n")
    s = summarize(tiny, hash_tree(tiny).entries)
    assert s["unreadable"]["label_lines"] == 1 and s["unreadable"]["unknown_class_ids"] == 1
    assert s["unreadable"]["manifest_lines"] == 1
    assert s["labels"]["negatives"] == 0 and s["boxes_per_class"]["7"] == 1


def test_cold_and_warm_runs_write_identical_bytes(tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    first, second = tmp_path / "1", tmp_path / "2"
    cold, _ = hash_dataset(
        tiny, files_out=first / "f.jsonl", metrics_out=first / "m.json", cache_path=cache
    )
    warm, _ = hash_dataset(
        tiny, files_out=second / "f.jsonl", metrics_out=second / "m.json", cache_path=cache
    )
    assert (len(cold.hashed), cold.cached) == (8, 0) and (len(warm.hashed), warm.cached) == (0, 8)
    for name in ("f.jsonl", "m.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_incremental_rereads_only_the_changed_file(
    tiny: Path, tmp_path: Path, reads: list[str]
) -> None:
    cache = tmp_path / "cache.json"
    hash_tree(tiny, cache_path=cache)
    assert len(reads) == 8
    reads.clear()
    (tiny / "labels/lab/a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    result = hash_tree(tiny, cache_path=cache)
    assert rels(tiny, reads) == ["labels/lab/a.txt"] == result.hashed
    assert result.cached == 7
    changed = {e.path: e.sha256 for e in result.entries}["labels/lab/a.txt"]
    assert changed == hashlib.sha256(b"1 0.5 0.5 0.2 0.2\n").hexdigest()
    reads.clear()
    assert hash_tree(tiny, cache_path=cache).hashed == [] and reads == []


def test_same_size_new_mtime_is_rehashed(tiny: Path, tmp_path: Path, reads: list[str]) -> None:
    cache = tmp_path / "cache.json"
    hash_tree(tiny, cache_path=cache)
    reads.clear()
    path = tiny / "images/lab/a.jpg"
    new = b"\xff\xd8 picture A"
    assert len(new) == path.stat().st_size
    path.write_bytes(new)
    os.utime(path, ns=(OLD_NS + 1, OLD_NS + 1))  # only the mtime (by 1 ns) says it changed
    result = hash_tree(tiny, cache_path=cache)
    assert rels(tiny, reads) == ["images/lab/a.jpg"]
    assert {e.path: e.sha256 for e in result.entries}["images/lab/a.jpg"] == hashlib.sha256(
        new
    ).hexdigest()


def test_cache_is_kept_per_dataset_folder(tmp_path: Path) -> None:
    """Two folders with the same paths, sizes and mtimes but other bytes must not share cache entries."""
    one, two = make_tiny(tmp_path / "one"), make_tiny(tmp_path / "two")
    (two / "images/lab/a.jpg").write_bytes(b"\xff\xd8 picture z")
    os.utime(two / "images/lab/a.jpg", ns=(OLD_NS, OLD_NS))
    cache = tmp_path / "cache.json"
    hash_tree(one, cache_path=cache)
    result = hash_tree(two, cache_path=cache)
    assert result.hashed == sorted(FILES.keys() | {"manifest.jsonl"})
    assert {e.path: e.sha256 for e in result.entries}["images/lab/a.jpg"] == hashlib.sha256(
        b"\xff\xd8 picture z"
    ).hexdigest()
    assert hash_tree(one, cache_path=cache).cached == 8


def _is_sqlite_cache(path: Path) -> bool:
    head = path.read_bytes()[:72]
    return head.startswith(b"SQLite format 3\x00") and int.from_bytes(head[68:72], "big") == (
        hash_cache.APPLICATION_ID
    )


def _cache_records(path: Path) -> dict[str, list[object]]:
    """Every file's record in the cache, by relative path."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT rel, records FROM folders").fetchall()
    return {rel + rec[0]: rec for rel, text in rows for rec in json.loads(text)}


def _cache_rows(path: Path) -> int:
    return len(_cache_records(path))


@pytest.mark.parametrize(
    "garbage",
    [
        b'{"vigil":"hash-cache", truncated',  # an older JSON cache (vigil's marker), then garbage
        b"SQLite format 3\x00" + bytes(52) + hash_cache.APPLICATION_ID.to_bytes(4, "big") + b"junk",
    ],
)
def test_corrupt_cache_is_ignored_and_rewritten(tiny: Path, tmp_path: Path, garbage: bytes) -> None:
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(garbage)
    assert len(hash_tree(tiny, cache_path=cache).hashed) == 8
    assert _is_sqlite_cache(cache) and _cache_rows(cache) == 8
    assert hash_tree(tiny, cache_path=cache).cached == 8


@pytest.mark.parametrize("marker", [{"vigil": "hash-cache", "version": 2}, {"version": 1}])
def test_json_cache_of_earlier_versions_is_read_then_replaced(
    tiny: Path, tmp_path: Path, reads: list[str], marker: dict[str, object]
) -> None:
    key = str(tiny.resolve())
    rows = {e.path: [e.size, OLD_NS, e.sha256] for e in hash_tree(tiny).entries}
    reads.clear()
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({**marker, "roots": {key: rows}}, separators=(",", ":")))
    assert hash_tree(tiny, cache_path=cache).cached == 8 and reads == []
    assert _is_sqlite_cache(cache) and _cache_rows(cache) == 8


def test_unchanged_run_writes_nothing_and_a_change_writes_one_folder(
    tiny: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.sqlite"
    hash_tree(tiny, cache_path=cache)
    before = cache.stat().st_mtime_ns
    os.utime(cache, ns=(OLD_NS, OLD_NS))
    hash_tree(tiny, cache_path=cache)
    assert cache.stat().st_mtime_ns == OLD_NS  # nothing changed, nothing written
    assert before != OLD_NS
    with sqlite3.connect(cache) as db:
        folders_before = dict(db.execute("SELECT rel, records FROM folders").fetchall())
    (tiny / "labels/lab/a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (tiny / "notes/README.md").unlink()
    hash_tree(tiny, cache_path=cache)
    assert _cache_rows(cache) == 7  # one record replaced, one deleted, the file not rebuilt
    with sqlite3.connect(cache) as db:
        folders_after = dict(db.execute("SELECT rel, records FROM folders").fetchall())
    # the folder that lost its only file is gone; the changed one is rewritten; the rest untouched
    assert set(folders_before) - set(folders_after) == {"notes/"}
    assert {r for r in folders_after if folders_after[r] != folders_before[r]} == {"labels/lab/"}
    record = _cache_records(cache)["labels/lab/a.txt"]
    assert record[3] == hashlib.sha256(b"1 0.5 0.5 0.2 0.2\n").hexdigest()
    assert record[4] == [[1, 1], 0]  # what the summary counts of it: one box of class 1


def test_an_unchanged_dataset_reads_no_file_and_its_summary_is_the_same(
    tiny: Path, tmp_path: Path, reads: list[str]
) -> None:
    cache = tmp_path / "cache.sqlite"
    _, first = hash_dataset(tiny, cache_path=cache)
    reads.clear()
    _, again = hash_dataset(tiny, cache_path=cache)
    assert again == first and reads == [] and again == summarize(tiny, hash_tree(tiny).entries)
    (tiny / "labels/lab/b.txt").write_text("1 0.5 0.5 0.2 0.2\n")  # no longer a negative
    reads.clear()
    _, changed = hash_dataset(tiny, cache_path=cache)
    assert rels(tiny, reads) == ["labels/lab/b.txt"]
    assert changed["labels"]["negatives"] == first["labels"]["negatives"] - 1


def test_counts_made_by_other_code_are_redone_without_rehashing(
    tiny: Path, tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache.sqlite"
    _, first = hash_dataset(tiny, cache_path=cache)
    with sqlite3.connect(cache) as db:  # counts that this code would never make
        rows = db.execute("SELECT rel, records FROM folders").fetchall()
        for rel, text in rows:
            records = [r[:4] + [[[0, 99], 0]] if len(r) == 5 else r for r in json.loads(text)]
            db.execute("UPDATE folders SET records = ? WHERE rel = ?", (json.dumps(records), rel))
    monkeypatch.setattr(hashing, "code_signature", lambda: "other code")
    reads.clear()
    result, again = hash_dataset(tiny, cache_path=cache)
    assert again == first and reads == [] and result.cached == 8  # counted again, not re-hashed


def test_many_files_hash_in_processes_like_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "many"
    for i in range(300):
        (root / "images" / f"s{i % 7}").mkdir(parents=True, exist_ok=True)
        (root / "images" / f"s{i % 7}" / f"{i}.jpg").write_bytes(os.urandom(i % 50))
    (root / "images" / "flat").mkdir()
    for i in range(130):  # a big folder, hashed in parts by both processes
        (root / "images" / "flat" / f"{i:03d}.jpg").write_bytes(os.urandom(i % 40))
    one = hash_tree(root, workers=1)
    monkeypatch.setattr(hashing, "PARALLEL_MIN", 10)
    monkeypatch.setattr(hashing, "BATCH_FILES", 7)
    monkeypatch.setattr(hashing, "SPLIT_FILES", 50)
    cache = tmp_path / "cache.sqlite"
    many = hash_tree(root, workers=2, cache_path=cache)
    assert many.entries == one.entries and len(many.hashed) == 430
    assert many.manifest_text == one.manifest_text and many.fingerprint == one.fingerprint
    expected = {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*.jpg")
    }
    assert {e.path: e.sha256 for e in many.entries} == expected
    # a big folder's parts: one changed file and one gone file re-read and dropped, the rest cached
    (root / "images/flat/077.jpg").write_bytes(b"new")
    (root / "images/flat/120.jpg").unlink()
    again = hash_tree(root, workers=2, cache_path=cache)
    assert again.hashed == ["images/flat/077.jpg"] and again.cached == 428
    assert sorted(_cache_records(cache)) == sorted(e.path for e in again.entries)
    assert hash_tree(root, workers=2, cache_path=cache).hashed == []


def test_names_that_sort_between_folders_keep_the_manifest_sorted(tmp_path: Path) -> None:
    """`a.jpg` and `a-b/` sort around `a/`, a folder with files and subfolders interleaves them, and
    names that JSON escapes are escaped: the manifest is json.dumps of each entry, sorted by path."""
    root = tmp_path / "tricky"
    names = [
        "a/x.jpg",
        "a.jpg",
        "a-b/y.jpg",
        "a/b/z.jpg",
        "a/c.txt",
        "a/b.jpg",
        "é/ü.png",
        'q"uote.jpg',
        "new\nline.jpg",
        "back\\slash.jpg",
        "tab\t.jpg",
        "a/0.jpg",
    ]
    for rel in names:
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "images" / rel).write_bytes(rel.encode())
    result = hash_tree(root, workers=1)
    expected = sorted(f"images/{n}" for n in names)
    assert [e.path for e in result.entries] == expected
    lines = result.manifest_text.splitlines()
    assert lines == [e.to_json() for e in result.entries]
    assert all(json.loads(line)["path"] == rel for line, rel in zip(lines, expected, strict=True))
    assert result.fingerprint == hashing.fingerprint(result.entries)


def test_file_changing_while_hashed_in_a_worker_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "many"
    (root / "images").mkdir(parents=True)
    for i in range(40):
        (root / "images" / f"{i}.jpg").write_bytes(b"x" * 10)
    monkeypatch.setattr(hashing, "PARALLEL_MIN", 10)
    monkeypatch.setattr(hashing, "BATCH_FILES", 5)
    real = hashing.sha256_file

    def grow_first(path: str | Path, size_hint: int = hashing.CHUNK, keep: bool = False):  # type: ignore[no-untyped-def]
        if Path(path).name == "7.jpg":  # in the worker, between its stat and its read
            Path(path).write_bytes(b"x" * 11)
        return real(path, size_hint, keep)

    monkeypatch.setattr(hashing, "sha256_file", grow_first)
    with pytest.raises(
        VigilError, match=r"changed while being hashed \(10 bytes listed, 11 read\)"
    ) as info:
        hash_tree(root, workers=2)
    assert info.value.path == str(root / "images" / "7.jpg")


@pytest.mark.parametrize(
    "content", [b"hash:\n  workers: 2\n", b"{not json", b"", b'{"version": 1}']
)
def test_cache_path_that_is_not_a_vigil_cache_is_never_overwritten(
    tiny: Path, tmp_path: Path, content: bytes
) -> None:
    params = tmp_path / "params.yaml"
    params.write_bytes(content)
    result = CliRunner().invoke(app, ["data", "hash", str(tiny), "--cache", str(params)])
    assert result.exit_code == 2, result.output
    assert "params.yaml [--cache]: the file exists and is not a vigil hash cache" in result.output
    assert params.read_bytes() == content
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(VigilError, match="not a regular file"):
        hash_tree(tiny, cache_path=folder)


def test_cache_and_outputs_inside_the_folder_are_not_hashed(tiny: Path) -> None:
    result, _ = hash_dataset(
        tiny,
        files_out=tiny / "files.jsonl",
        metrics_out=tiny / "m.json",
        cache_path=tiny / ".vigil/cache.json",
    )
    again, _ = hash_dataset(
        tiny,
        files_out=tiny / "files.jsonl",
        metrics_out=tiny / "m.json",
        cache_path=tiny / ".vigil/cache.json",
    )
    assert len(result.entries) == len(again.entries) == 8
    assert again.cached == 8


def test_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="dataset folder not found") as info:
        hash_tree(tmp_path / "nope")
    assert info.value.path == str(tmp_path / "nope")


def test_zero_workers_is_a_user_error(tiny: Path) -> None:
    with pytest.raises(VigilError, match="workers must be at least 1"):
        hash_tree(tiny, workers=0)


def test_symlink_out_of_the_folder_is_refused(tiny: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("x")
    (tiny / "images/lab/link.jpg").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(VigilError, match="outside the dataset folder"):
        hash_tree(tiny)


def test_bad_files_manifest_names_the_line(tmp_path: Path) -> None:
    good = FileEntry("images/a.jpg", "0" * 64, 3, "image").to_json()
    path = tmp_path / "files.jsonl"
    path.write_text(good + "\n" + '{"path": "images/b.jpg", "sha256": "xyz", "size": 1}\n')
    with pytest.raises(VigilError, match="bad sha256") as info:
        read_files_manifest(path)
    assert info.value.line == 2 and info.value.field == "sha256"
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(VigilError, match="duplicate path"):
        read_files_manifest(path)


def test_diff_lists_added_removed_changed_per_kind() -> None:
    sha = lambda c: c * 64  # noqa: E731
    old = [
        FileEntry("images/a.jpg", sha("a"), 1, "image"),
        FileEntry("images/b.jpg", sha("b"), 1, "image"),
        FileEntry("labels/a.txt", sha("c"), 1, "label"),
        FileEntry("labels/b.txt", sha("d"), 1, "label"),
        FileEntry("manifest.jsonl", sha("e"), 1, "manifest"),
    ]
    new = [
        FileEntry("images/a.jpg", sha("a"), 1, "image"),
        FileEntry("images/c.jpg", sha("f"), 1, "image"),
        FileEntry("labels/a.txt", sha("0"), 1, "label"),
        FileEntry("labels/c.txt", sha("1"), 1, "label"),
        FileEntry("manifest.jsonl", sha("e"), 1, "manifest"),
    ]
    diff = diff_manifests(old, new).to_dict()
    assert diff["image"] == {"added": ["images/c.jpg"], "removed": ["images/b.jpg"], "changed": []}
    assert diff["label"] == {
        "added": ["labels/c.txt"],
        "removed": ["labels/b.txt"],
        "changed": ["labels/a.txt"],
    }
    assert diff["manifest"] == {"added": [], "removed": [], "changed": []}
    assert diff["unchanged"] == 2 and diff["identical"] is False
    assert diff_manifests(old, old).identical


def test_diff_of_a_manifest_against_an_edited_folder(tiny: Path, tmp_path: Path) -> None:
    hash_dataset(tiny, files_out=tmp_path / "old.jsonl")
    (tiny / "images/lab/b.jpg").unlink()
    (tiny / "images/lab/d.jpg").write_bytes(b"new")
    (tiny / "labels/lab/b.txt").write_text("1 0.5 0.5 0.1 0.1\n")
    diff = diff_manifests(entries_of(tmp_path / "old.jsonl"), entries_of(tiny))
    assert diff.kinds["image"].added == ["images/lab/d.jpg"]
    assert diff.kinds["image"].removed == ["images/lab/b.jpg"]
    assert diff.kinds["label"].changed == ["labels/lab/b.txt"]
    assert diff.unchanged == 6


def test_cli_hash_writes_and_prints(tiny: Path, tmp_path: Path) -> None:
    files, metrics, cache = tmp_path / "f.jsonl", tmp_path / "m.json", tmp_path / "c.json"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "hash",
            str(tiny),
            "--files",
            str(files),
            "--metrics",
            str(metrics),
            "--workers",
            "1",
            "--cache",
            str(cache),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "8 files" in result.output and "hashed 8 files, 0 from cache" in result.output
    assert len(files.read_text().splitlines()) == 8
    assert json.loads(metrics.read_text())["boxes_per_class"] == {"car": 2, "person": 1}


def test_cli_diff_prints_listing_summary_and_json(tiny: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    hash_dataset(tiny, files_out=old)
    (tiny / "labels/lab/a.txt").write_text("")
    cache = ["--cache", str(tmp_path / "c.json")]
    result = CliRunner().invoke(app, ["data", "diff", str(old), str(tiny), *cache])
    assert result.exit_code == 0, result.output
    assert "  ~ labels/lab/a.txt" in result.output
    assert (
        result.output.strip()
        .splitlines()[-1]
        .endswith("images +0 -0 ~0, labels +0 -0 ~1; 7 unchanged")
    )
    as_json = CliRunner().invoke(app, ["data", "diff", str(old), str(tiny), "--json", *cache])
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["label"]["changed"] == ["labels/lab/a.txt"]


def test_cli_missing_folder_is_one_clean_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["data", "hash", str(tmp_path / "nope"), "--cache", str(tmp_path / "c.json")]
    )
    assert result.exit_code == 2
    assert "dataset folder not found" in result.output and "Traceback" not in result.output


def test_stage_script_reads_params_and_writes_outputs(tiny: Path, tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    write_params(work, {"hash.workers": 1})
    cmd = [
        sys.executable,
        str(REPO / "stages/hash.py"),
        "--data",
        str(tiny),
        "--files",
        "artifacts/hash/files.jsonl",
        "--metrics",
        "metrics/dataset.json",
        "--cache",
        ".vigil/cache.json",
    ]
    env = {**os.environ, "VIGIL_NO_PROGRESS": "1"}
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (work / "artifacts/hash/files.jsonl").is_file() and (
        work / ".vigil/cache.json"
    ).is_file()
    assert json.loads((work / "metrics/dataset.json").read_text())["images"]["unlabelled"] == 1
    write_params(work, {"hash.worker": 1})
    shutil.rmtree(work / "metrics")
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unknown key 'hash.worker'" in done.stderr
    assert not (work / "metrics").exists()


def test_cache_path_with_uri_characters_is_read_back(tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a?b#c%d"
    folder.mkdir()
    cache = folder / "cache.sqlite"
    hash_tree(tiny, cache_path=cache)
    assert hash_tree(tiny, cache_path=cache).cached == 8


def test_summary_from_the_workers_counts_equals_reading_the_files(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tiny / "labels/lab/b.txt").write_bytes(b"0 0.5 0.5 0.2 0.2\nnot a box\n7 0.1 0.1 0.1 0.1\n")
    (tiny / "labels/pool").mkdir()
    (tiny / "labels/pool/c.txt").write_bytes(b"\xff\xfe not utf-8\n")
    (tiny / "labels/pool/d.txt").write_bytes(b"1 0.5 0.5 0.2 0.2\r\n\r\n1 0.2 0.2 0.1 0.1\r\n")
    monkeypatch.setattr(hashing, "PARALLEL_MIN", 2)
    monkeypatch.setattr(hashing, "BATCH_FILES", 2)
    result, from_workers = hash_dataset(tiny, workers=2)
    assert from_workers == summarize(tiny, result.entries)
    assert from_workers["unreadable"]["label_files"] == 1
    assert from_workers["unreadable"]["label_lines"] == 1
    assert from_workers["unreadable"]["unknown_class_ids"] == 1
    assert from_workers["boxes_per_class"]["person"] == 3


def test_a_version_2_cache_gives_its_shas_and_is_rewritten(
    tiny: Path, tmp_path: Path, reads: list[str]
) -> None:
    """The per-file SQLite cache of the version before: its shas are kept (nothing re-read but the
    label files and the manifest, whose counts it lacks), and it is replaced by this version's."""
    cache = tmp_path / "cache.sqlite"
    key = str(tiny.resolve())
    with sqlite3.connect(cache) as db:
        db.execute(f"PRAGMA application_id = {hash_cache.APPLICATION_ID}")
        db.execute("PRAGMA user_version = 2")
        db.execute("CREATE TABLE roots (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE)")
        db.execute(
            "CREATE TABLE files (root INTEGER, rel TEXT, size INTEGER, mtime_ns INTEGER,"
            " sha256 BLOB, PRIMARY KEY (root, rel))"
        )
        db.execute("INSERT INTO roots VALUES (1, ?)", (key,))
        for e in hash_tree(tiny).entries:
            row = (e.path, e.size, OLD_NS, bytes.fromhex(e.sha256))
            db.execute("INSERT INTO files VALUES (1, ?, ?, ?, ?)", row)
    reads.clear()
    result = hash_tree(tiny, cache_path=cache)
    assert result.cached == 8 and reads == []
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == hash_cache.SCHEMA_VERSION
    assert _cache_rows(cache) == 8


def test_cache_of_another_schema_version_is_rebuilt(tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    hash_tree(tiny, cache_path=cache)
    with sqlite3.connect(cache) as db:
        db.execute("PRAGMA user_version = 1")
    assert len(hash_tree(tiny, cache_path=cache).hashed) == 8  # not trusted: hashed again
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == hash_cache.SCHEMA_VERSION
    assert hash_tree(tiny, cache_path=cache).cached == 8


@pytest.mark.parametrize(
    "rel",
    [
        "a.jpg",
        ".jpg",
        "..jpg",
        "a.",
        "a.b.JPG",
        "x/.hidden.png",
        "noext",
        "d.ir/file",
        "a..png",
        "...",
    ],
)
def test_fast_suffix_is_splitexts(rel: str) -> None:
    assert hashing._suffix(rel) == os.path.splitext(rel)[1].lower()
    kind = hashing.kind_of(f"images/{rel}")
    assert kind == ("image" if os.path.splitext(rel)[1].lower() in {".jpg", ".png"} else "other")


def test_dvc_and_git_bookkeeping_inside_the_dataset_is_not_data(tiny: Path) -> None:
    flat = hash_tree(tiny)
    (tiny / "images/lab.dvc").write_text("outs:\n- md5: 0\n  path: lab\n")
    (tiny / "images/.gitignore").write_text("/lab\n")
    sharded = hash_tree(tiny)
    assert sharded.entries == flat.entries
    (tiny / "images/lab/x.dvcfile").write_bytes(b"data")  # only the exact suffix is bookkeeping
    assert len(hash_tree(tiny).entries) == len(flat.entries) + 1


def test_a_cache_record_that_is_not_well_formed_is_hashed_again(
    tiny: Path, tmp_path: Path, reads: list[str]
) -> None:
    """A record whose sha256 is not 64 hex digits, and a folder whose records do not parse, are
    never trusted: those files are read again and the manifest holds their real digests."""
    cache = tmp_path / "cache.sqlite"
    first = hash_tree(tiny, cache_path=cache)
    with sqlite3.connect(cache) as db:
        (text,) = db.execute("SELECT records FROM folders WHERE rel = 'images/lab/'").fetchone()
        records = json.loads(text)
        records[0][3] = "Z" * 64
        db.execute(
            "UPDATE folders SET records = ? WHERE rel = 'images/lab/'", (json.dumps(records),)
        )
        db.execute("UPDATE folders SET records = '[not json' WHERE rel = 'labels/lab/'")
    reads.clear()
    again = hash_tree(tiny, cache_path=cache)
    read = rels(tiny, reads)
    assert f"images/lab/{records[0][0]}" in read
    assert {r for r in read if r.startswith("labels/lab/")} == {
        e.path for e in first.entries if e.path.startswith("labels/lab/")
    }
    assert again.manifest_text == first.manifest_text


def test_outputs_whose_bytes_would_not_change_keep_their_mtime(tiny: Path, tmp_path: Path) -> None:
    files, metrics = tmp_path / "out/files.jsonl", tmp_path / "out/dataset.json"
    cache = tmp_path / "cache.sqlite"
    hash_dataset(tiny, files_out=files, metrics_out=metrics, cache_path=cache)
    for path in (files, metrics):
        os.utime(path, ns=(OLD_NS, OLD_NS))
    hash_dataset(tiny, files_out=files, metrics_out=metrics, cache_path=cache)
    assert files.stat().st_mtime_ns == OLD_NS and metrics.stat().st_mtime_ns == OLD_NS
    (tiny / "labels/lab/a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    hash_dataset(tiny, files_out=files, metrics_out=metrics, cache_path=cache)
    assert files.stat().st_mtime_ns != OLD_NS and metrics.stat().st_mtime_ns != OLD_NS
