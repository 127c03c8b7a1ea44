"""vigil.data.shards: pack a dataset into tar shards and unpack it, checked (docs/SCALE.md)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_image
from vigil.cli import app
from vigil.data import shards
from vigil.data.hashing import fingerprint, hash_tree
from vigil.data.shards import INDEX, Member, pack, read_index, read_member, stamp_path, unpack
from vigil.errors import VigilError

REPO = Path(__file__).resolve().parents[1]
LAB_LABEL = "labels/lab/000000.txt"


def make_sample(root: Path, lab: int = 5, pool: int = 3) -> Path:
    """A small dataset shaped like the bundled sample: images/{lab,pool}, labels/lab, pool_truth/pool
    and root files; one non-ASCII and one long name (PAX headers)."""
    lines = []
    for i in range(lab + pool):
        session = "lab" if i < lab else "pool"
        rel = f"images/{session}/{i:06d}.jpg"
        write_image(root / rel, seed=i)
        truth = root / ("labels/lab" if i < lab else "pool_truth/pool") / f"{i:06d}.txt"
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text(f"{i % 3} 0.500000 0.500000 0.200000 0.300000\n")
        lines.append(json.dumps({"image": rel, "driver_id": f"d{i}", "labelled": i < lab}))
    write_image(root / "images/lab/caméra_é.jpg", seed=99)
    (root / "labels/lab/caméra_é.txt").write_text("1 0.4 0.4 0.1 0.1\n")
    long = "images/lab/" + "x" * 120 + ".jpg"
    write_image(root / long, seed=98)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("car\nperson\nbike\n")
    (root / "PROVENANCE.json").write_text('{"builder": "test"}\n')
    (root / "train.txt").write_text("images/lab/000000.jpg\n")
    return root


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return make_sample(tmp_path / "flat")


@pytest.fixture
def packed(sample: Path, tmp_path: Path) -> Path:
    out = tmp_path / "data-shards"
    pack(sample, out)
    return out


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def state(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Bytes, mtime_ns and inode of every file under root, and of the folder's siblings (temps, locks)."""
    out = {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else b"/", *_stat(p))
        for p in root.rglob("*")
    }
    return {**out, **{f"../{p.name}": (b"", 0, 0) for p in root.parent.iterdir()}}


def _stat(p: Path) -> tuple[int, int]:
    st = p.stat()
    return (st.st_mtime_ns, st.st_ino) if p.is_file() else (0, 0)


def mtimes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()
    }


def edit_label(data: Path) -> None:
    (data / LAB_LABEL).write_text("0 0.510000 0.500000 0.200000 0.300000\n")


def write_index(folder: Path, members: list[Member]) -> None:
    (folder / INDEX).write_text(shards.index_text(members))


# --- round trip, determinism, increments ----------------------------------------------------------


def test_round_trip_hashes_like_the_flat_folder(sample: Path, packed: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in packed.iterdir()) == [
        "PROVENANCE.json",
        "classes.txt",
        "folder-pool_truth.tar",
        INDEX,
        "manifest.jsonl",
        "session-lab.tar",
        "session-pool.tar",
        "train.txt",
    ]
    index = read_index(packed)
    flat = files_of(sample)
    assert [m.path for m in index] == sorted(flat)
    for m in index:  # an index line is a files.jsonl line plus a location
        assert read_member(packed, m) == flat[m.path]
        assert m.sha256 == hashlib.sha256(flat[m.path]).hexdigest() and m.size == len(flat[m.path])
    assert {m.shard for m in index if m.path.startswith("labels/lab/")} == {"session-lab.tar"}
    with tarfile.open(packed / "session-lab.tar") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == sorted(i.name for i in infos)
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
        (0, 0, 0, "", "", 0o644)
    }
    data = tmp_path / "data"
    result = unpack(packed, data)
    assert result.extracted == result.shards == sorted({str(m.shard) for m in index if m.shard})
    assert result.shards == ["folder-pool_truth.tar", "session-lab.tar", "session-pool.tar"]
    assert files_of(data) == flat
    before, after = hash_tree(sample).entries, hash_tree(data).entries
    assert after == before and fingerprint(after) == fingerprint(before)
    assert stamp_path(data) == tmp_path / ".vigil/shards/data.json" and stamp_path(data).is_file()


def test_pack_is_deterministic(sample: Path, tmp_path: Path) -> None:
    pack(sample, tmp_path / "a")
    copy = tmp_path / "copy"
    shutil.copytree(sample, copy)  # other mtimes and inodes, same bytes
    for p in copy.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(123456789, 123456789))
            p.chmod(0o600)
    pack(copy, tmp_path / "b")
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")


def test_repacking_an_unchanged_dataset_writes_nothing(sample: Path, packed: Path) -> None:
    before = state(packed)
    result = pack(sample, packed)
    assert not result.changed and result.written == []
    assert state(packed) == before


def test_a_changed_label_rewrites_only_its_shard(sample: Path, packed: Path) -> None:
    before = state(packed)
    edit_label(sample)
    result = pack(sample, packed)
    assert result.changed and result.written == ["session-lab.tar"]
    after = state(packed)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {"session-lab.tar", INDEX}
    assert (
        read_member(packed, next(m for m in read_index(packed) if m.path == LAB_LABEL))
        == (sample / LAB_LABEL).read_bytes()
    )


def test_a_removed_session_drops_its_shard_and_unpack_removes_its_files(
    sample: Path, packed: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    unpack(packed, data)
    shutil.rmtree(sample / "pool_truth")
    assert pack(sample, packed).written == []  # nothing to write, yet the index changed
    assert not (packed / "folder-pool_truth.tar").exists()
    result = unpack(packed, data)
    assert result.extracted == [] and len(result.removed) == 3
    assert not (data / "pool_truth").exists()  # its emptied folders pruned
    assert files_of(data) == files_of(sample)


def test_a_folder_of_stale_files_gives_way_to_a_file(sample: Path, tmp_path: Path) -> None:
    (sample / "pool_truth/pool/x/deep").mkdir(parents=True)
    (sample / "pool_truth/pool/x/y.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    out, data = tmp_path / "s", tmp_path / "data"
    pack(sample, out)
    unpack(packed_folder := out, data)
    (data / "pool_truth/pool/x/deep").mkdir()  # an empty folder: nothing vigil must keep
    shutil.rmtree(sample / "pool_truth/pool/x")
    (sample / "pool_truth/pool/x").write_text("now a file\n")
    pack(sample, packed_folder)
    assert unpack(packed_folder, data).removed == ["pool_truth/pool/x/y.txt"]
    assert (data / "pool_truth/pool/x").read_text() == "now a file\n"
    assert files_of(data) == files_of(sample)


def test_unpack_is_incremental(sample: Path, packed: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    unpack(packed, data)
    first = mtimes(data)
    again = unpack(packed, data)
    assert again.extracted == [] and again.copied == [] and mtimes(data) == first
    edit_label(sample)
    pack(sample, packed)
    result = unpack(packed, data)
    assert result.extracted == ["session-lab.tar"] and result.copied == []
    now = mtimes(data)
    moved = {rel for rel in now if now[rel] != first[rel]}
    assert moved == {m.path for m in read_index(packed) if m.shard == "session-lab.tar"}
    assert files_of(data) == files_of(sample)
    assert hash_tree(data).entries == hash_tree(sample).entries


def test_unpack_adopts_a_flat_folder_with_the_same_bytes(sample: Path, packed: Path) -> None:
    """Switching an existing flat data/ to shards: its files are the index's, so they are kept."""
    before = files_of(sample)
    (sample / "images/lab.dvc").write_text("outs: []\n")  # DVC's bookkeeping is never data
    result = unpack(packed, sample)
    assert result.removed == [] and len(result.extracted) == 3  # its tars checked once
    assert files_of(sample) == {**before, "images/lab.dvc": b"outs: []\n"}
    assert unpack(packed, sample).extracted == []


def test_an_edited_label_repacked_is_adopted_by_unpack(
    sample: Path, packed: Path, tmp_path: Path
) -> None:
    """The documented label fix: edit data/, re-pack, and the next unpack keeps the edit."""
    data = tmp_path / "data"
    unpack(packed, data)
    edit_label(data)
    pack(data, packed)
    unpack(packed, data)
    assert (data / LAB_LABEL).read_text().startswith("0 0.51")


# --- what pack refuses ----------------------------------------------------------------------------


def test_pack_refuses_an_output_inside_the_data(sample: Path) -> None:
    with pytest.raises(VigilError, match="must not contain one another"):
        pack(sample, sample / "shards")
    with pytest.raises(VigilError, match="must not contain one another"):
        pack(sample / "images", sample.parent)
    assert not (sample / "shards").exists()


def test_pack_refuses_a_folder_it_did_not_write(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(VigilError, match="not a shards folder"):
        pack(sample, out)
    assert files_of(out) == {"notes.txt": b"keep me"}


def test_pack_refuses_a_stray_file_in_its_output(sample: Path, packed: Path) -> None:
    (packed / "stray.bin").write_bytes(b"x")
    with pytest.raises(VigilError, match="'stray.bin' is not named by index.jsonl"):
        pack(sample, packed)


@pytest.mark.parametrize("name", [INDEX, "extra.tar"])
def test_pack_refuses_a_root_file_named_like_its_own(
    sample: Path, tmp_path: Path, name: str
) -> None:
    (sample / name).write_text("x\n")
    with pytest.raises(VigilError, match="take the place of the shards' own files") as err:
        pack(sample, tmp_path / "out")
    assert err.value.path == str(sample / name)
    assert not (tmp_path / "out").exists()


def test_a_failed_pack_leaves_no_partial_output(
    sample: Path, packed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = state(packed)
    real = shards.write_shard
    calls: list[str] = []

    def failing(path: Path, files: list[tuple[str, Path]]) -> list[Member]:
        calls.append(path.name)
        real(path, files)  # a whole tar on disk, then the failure
        raise RuntimeError("disk full")

    monkeypatch.setattr(shards, "write_shard", failing)
    edit_label(sample)
    with pytest.raises(RuntimeError):
        pack(sample, packed)
    assert calls == ["session-lab.tar"] and state(packed) == before
    with pytest.raises(RuntimeError):
        pack(sample, tmp_path / "fresh" / "out")
    assert not (tmp_path / "fresh").exists()


# --- what unpack refuses --------------------------------------------------------------------------


def rewrite_tar(
    folder: Path,
    shard: str,
    extra: list[tuple[tarfile.TarInfo, bytes]] = (),  # type: ignore[assignment]
    index_extra: list[Member] = (),  # type: ignore[assignment]
) -> None:
    """Rewrite one shard with its members plus `extra`, and its index lines at their new offsets."""
    index = read_index(folder)
    own = [m for m in index if m.shard == shard]
    blobs = {m.path: read_member(folder, m) for m in own}
    with tarfile.open(folder / shard, "w", format=tarfile.PAX_FORMAT) as tar:
        for m in own:
            tar.addfile(shards.tar_info(m.path, m.size), io.BytesIO(blobs[m.path]))
        for info, blob in extra:
            tar.addfile(info, io.BytesIO(blob) if info.isreg() else None)
    with tarfile.open(folder / shard) as tar:
        offsets: dict[str, int] = {}
        for info in tar:
            offsets.setdefault(info.name, info.offset_data)
    fixed = [
        Member(m.path, m.shard, offsets[m.path], m.size, m.sha256) if m.shard == shard else m
        for m in index
    ]
    write_index(folder, [*fixed, *index_extra])


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = ""
) -> tarfile.TarInfo:
    info = shards.tar_info(name, size)
    info.type, info.linkname = kind, link
    return info


def _edit_index(folder: Path, path: str, **change: object) -> None:
    index = read_index(folder)
    write_index(
        folder,
        [
            Member(**{**m.__dict__, **change}) if m.path == path else m  # type: ignore[arg-type]
            for m in index
        ],
    )


def _raw_index_line(folder: Path, record: dict[str, object]) -> None:
    with (folder / INDEX).open("a") as handle:
        handle.write(json.dumps(record) + "\n")


SHA = "0" * 64
LAB = "session-lab.tar"
HOSTILE: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "absolute member": (
        lambda s, d: rewrite_tar(s, LAB, [(_info("/tmp/evil.txt", size=4), b"evil")]),
        r"member '/tmp/evil.txt': absolute, or climbs out",
    ),
    "dotdot member": (
        lambda s, d: rewrite_tar(s, LAB, [(_info("images/../../evil.txt", size=4), b"evil")]),
        r"member 'images/../../evil.txt': absolute, or climbs out",
    ),
    "symlink member": (
        lambda s, d: rewrite_tar(
            s, LAB, [(_info("images/lab/l.jpg", tarfile.SYMTYPE, 0, "/etc/passwd"), b"")]
        ),
        r"member 'images/lab/l.jpg': a link",
    ),
    "hardlink member": (
        lambda s, d: rewrite_tar(
            s, LAB, [(_info("images/lab/h.jpg", tarfile.LNKTYPE, 0, "images/lab/000000.jpg"), b"")]
        ),
        r"member 'images/lab/h.jpg': a link",
    ),
    "device member": (
        lambda s, d: rewrite_tar(s, LAB, [(_info("images/lab/null", tarfile.CHRTYPE), b"")]),
        r"member 'images/lab/null': a device or fifo",
    ),
    "fifo member": (
        lambda s, d: rewrite_tar(s, LAB, [(_info("images/lab/pipe", tarfile.FIFOTYPE), b"")]),
        r"member 'images/lab/pipe': a device or fifo",
    ),
    "folder member": (
        lambda s, d: rewrite_tar(s, LAB, [(_info("images/lab/sub", tarfile.DIRTYPE), b"")]),
        r"member 'images/lab/sub': not a regular file",
    ),
    "member not in the index": (
        lambda s, d: rewrite_tar(s, LAB, [(_info("images/lab/extra.jpg", size=3), b"abc")]),
        r"member 'images/lab/extra.jpg': not in index.jsonl for this shard",
    ),
    "member of another shard": (
        lambda s, d: rewrite_tar(s, LAB, [(_info("images/pool/000005.jpg", size=3), b"abc")]),
        r"member 'images/pool/000005.jpg': not in index.jsonl for this shard",
    ),
    "duplicate member": (
        lambda s, d: rewrite_tar(s, LAB, [(_info(LAB_LABEL, size=3), b"abc")]),
        r"member 'labels/lab/000000.txt': appears twice",
    ),
    "index line not in the tar": (
        lambda s, d: rewrite_tar(
            s, LAB, index_extra=[Member("images/lab/ghost.jpg", LAB, 0, 3, SHA)]
        ),
        r"names 'images/lab/ghost.jpg' in this shard, but the tar lacks it",
    ),
    "sha256 in the index": (
        lambda s, d: _edit_index(s, LAB_LABEL, sha256=SHA),
        r"member 'labels/lab/000000.txt': its sha256 differs",
    ),
    "bytes in the tar": (
        lambda s, d: _flip_byte(s, LAB_LABEL),
        r"member 'labels/lab/000000.txt': its sha256 differs",
    ),
    "size": (
        lambda s, d: _edit_index(s, LAB_LABEL, size=3),
        r"member 'labels/lab/000000.txt': \d+ bytes, index.jsonl says 3",
    ),
    "offset": (
        lambda s, d: _edit_index(s, LAB_LABEL, offset=512),
        r"member 'labels/lab/000000.txt': at byte \d+, index.jsonl says 512",
    ),
    "not a tar": (
        lambda s, d: (s / "session-pool.tar").write_bytes(b"\x00garbage" * 100),
        r"session-pool.tar: not a readable tar",
    ),
    "root file bytes": (
        lambda s, d: (s / "classes.txt").write_text("car\nperson\nbus\n"),
        r"classes.txt: its sha256 differs from index.jsonl",
    ),
    "unsafe index path": (
        lambda s, d: _raw_index_line(
            s, {"path": "../evil.txt", "shard": LAB, "offset": 0, "size": 1, "sha256": SHA}
        ),
        r"unsafe path '../evil.txt'",
    ),
    "absolute index path": (
        lambda s, d: _raw_index_line(
            s, {"path": "/etc/passwd", "shard": LAB, "offset": 0, "size": 1, "sha256": SHA}
        ),
        r"unsafe path '/etc/passwd'",
    ),
    "unsafe shard name": (
        lambda s, d: _raw_index_line(
            s, {"path": "images/x.jpg", "shard": "../x.tar", "offset": 0, "size": 1, "sha256": SHA}
        ),
        r"unsafe shard name '../x.tar'",
    ),
    "index path twice": (
        lambda s, d: _raw_index_line(
            s, {"path": LAB_LABEL, "shard": LAB, "offset": 0, "size": 1, "sha256": SHA}
        ),
        r"'labels/lab/000000.txt' is listed twice",
    ),
    "index file under a file": (
        lambda s, d: _raw_index_line(
            s, {"path": LAB_LABEL + "/inner", "shard": LAB, "offset": 0, "size": 1, "sha256": SHA}
        ),
        r"'labels/lab/000000.txt' is a file, yet 'labels/lab/000000.txt/inner' needs it to be a folder",
    ),
    "index not JSON": (
        lambda s, d: (s / INDEX).write_text((s / INDEX).read_text() + "{oops\n"),
        r"index.jsonl:\d+: not valid JSON",
    ),
    "stray file in the shards": (
        lambda s, d: (s / "other.tar").write_bytes(b""),
        r"'other.tar' is not named by index.jsonl",
    ),
    "missing tar": (
        lambda s, d: (s / "session-pool.tar").unlink(),
        r"index.jsonl names 'session-pool.tar', which is missing",
    ),
    "folder where a file goes": (
        lambda s, d: _folder_for_file(d, LAB_LABEL),
        r"labels/lab/000000.txt: a folder is where the shards have a file",
    ),
    "unknown file in the data": (
        lambda s, d: (d / "images/lab/mine.jpg").write_bytes(b"mine"),
        r"images/lab/mine.jpg: this file is not from the shards",
    ),
    "edited file not re-packed": (
        lambda s, d: edit_label(d) if d.exists() else _skip_fresh(),
        r"labels/lab/000000.txt: changed since vigil extracted it",
    ),
    "link in the data": (
        lambda s, d: (d / "images/lab/link.jpg").symlink_to(d / "images/lab/000000.jpg"),
        r"images/lab/link.jpg: a link or special file",
    ),
    "stamp not vigil's": (
        lambda s, d: stamp_path(d).write_text('{"mine": true}\n'),
        r"data.json: not vigil's unpack stamp",
    ),
}


class _Fresh(Exception):
    """A case that needs an unpacked data folder: not run on a fresh one."""


def _skip_fresh() -> None:
    raise _Fresh


def _flip_byte(folder: Path, path: str) -> None:
    member = next(m for m in read_index(folder) if m.path == path)
    with (folder / str(member.shard)).open("r+b") as handle:
        handle.seek(member.offset or 0)
        first = handle.read(1)
        handle.seek(member.offset or 0)
        handle.write(b"9" if first != b"9" else b"8")


def _folder_for_file(data: Path, rel: str) -> None:
    (data / rel).unlink()
    (data / rel).mkdir()
    (data / rel / ".gitignore").write_text(
        "/x\n"
    )  # bookkeeping, not data: yet not vigil's to delete


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_unpack_refuses_and_leaves_the_data_as_it_was(
    case: str, packed: Path, tmp_path: Path
) -> None:
    tamper, message = HOSTILE[case]
    data = tmp_path / "data"
    unpack(packed, data)
    tamper(packed, data)
    before = state(data)
    stamp = stamp_path(data).read_bytes()
    with pytest.raises(VigilError, match=message) as err:
        unpack(packed, data)
    assert "Traceback" not in err.value.render()
    assert state(data) == before and stamp_path(data).read_bytes() == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [".vigil", "data", "data-shards", "flat"]


# the cases that tamper with an unpacked data folder: they cannot happen on a first unpack
NEEDS_UNPACKED = {
    "edited file not re-packed",
    "folder where a file goes",
    "link in the data",
    "stamp not vigil's",
    "unknown file in the data",
}


@pytest.mark.parametrize("case", sorted(HOSTILE.keys() - NEEDS_UNPACKED))
def test_a_refused_first_unpack_writes_no_data_folder(
    case: str, packed: Path, tmp_path: Path
) -> None:
    tamper, message = HOSTILE[case]
    data = tmp_path / "data"
    tamper(packed, data)
    with pytest.raises(VigilError, match=message):
        unpack(packed, data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data-shards", "flat"]


def test_unpack_keeps_dvc_bookkeeping_and_refuses_data_inside_the_shards(
    packed: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    unpack(packed, data)
    (data / "images/lab.dvc").write_text("outs: []\n")
    unpack(packed, data)
    assert (data / "images/lab.dvc").is_file()
    with pytest.raises(VigilError, match="must not contain one another"):
        unpack(packed, packed / "data")


def test_a_lost_stamp_is_rebuilt_from_the_bytes(packed: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    unpack(packed, data)
    first = mtimes(data)
    stamp_path(data).unlink()
    result = unpack(
        packed, data
    )  # every file checked against the index, then the tars re-extracted
    assert result.removed == [] and files_of(data).keys() == first.keys()
    assert unpack(packed, data).extracted == []


# --- the command line and the stage ---------------------------------------------------------------


def test_cli_pack_and_unpack_print_one_line(sample: Path, tmp_path: Path) -> None:
    out, data = tmp_path / "s", tmp_path / "d"
    cache = ["--cache", str(tmp_path / "cache.sqlite")]
    packed = CliRunner().invoke(app, ["data", "pack", str(sample), "--out", str(out), *cache])
    assert packed.exit_code == 0, packed.output
    assert packed.stdout.splitlines() == [
        f"packed 23 files into {out}: 3 shards (3 written, 0 unchanged), 4 root files"
    ]
    unpacked = CliRunner().invoke(app, ["data", "unpack", str(out), "--out", str(data)])
    assert unpacked.exit_code == 0, unpacked.output
    assert unpacked.stdout.splitlines() == [
        f"unpacked 23 files into {data}: 3 shards (3 extracted, 0 unchanged), 4 root files "
        "copied, 0 stale files removed"
    ]


def test_cli_errors_are_one_line_naming_the_file(packed: Path, tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["data", "unpack", str(tmp_path / "nope"), "--out", "d"])
    assert missing.exit_code == 2
    assert missing.stderr.splitlines() == [
        f"error: {tmp_path / 'nope'}: shards folder not found — pass a `vigil data pack` folder"
    ]
    _flip_byte(packed, LAB_LABEL)
    hostile = CliRunner().invoke(app, ["data", "unpack", str(packed), "--out", str(tmp_path / "d")])
    assert hostile.exit_code == 2 and len(hostile.stderr.splitlines()) == 1
    assert hostile.stderr.startswith(f"error: {packed / LAB}: member '{LAB_LABEL}'")
    assert "Traceback" not in hostile.output and not (tmp_path / "d").exists()
    inside = CliRunner().invoke(app, ["data", "pack", str(packed), "--out", str(packed / "x")])
    assert inside.exit_code == 2 and len(inside.stderr.splitlines()) == 1


def _env() -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    pythonpath = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "PATH": path,
        "PYTHONPATH": pythonpath,  # the vigil under test, also in the stage's `python`
        "VIGIL_NO_PROGRESS": "1",
        "DVC_NO_ANALYTICS": "1",
    }


def test_hash_stage_unpacks_shards_then_hashes_as_the_flat_folder(
    sample: Path, packed: Path, tmp_path: Path
) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    (work / "params.yaml").write_text("hash:\n  workers: 1\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, str(REPO / "stages/hash.py"), *args, "--cache", ".vigil/c.sqlite"]
        return subprocess.run(cmd, cwd=work, env=_env(), capture_output=True, text=True)

    flat = run("--data", str(sample), "--files", "flat.jsonl", "--metrics", "m1.json")
    assert flat.returncode == 0, flat.stderr
    done = run(
        "--shards", str(packed), "--data", "data", "--files", "f.jsonl", "--metrics", "m.json"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hash: unpacked 23 files into data: 3 shards (3 extracted")
    assert (work / "f.jsonl").read_text() == (work / "flat.jsonl").read_text()
    _flip_byte(packed, LAB_LABEL)
    refused = run(
        "--shards", str(packed), "--data", "data", "--files", "f.jsonl", "--metrics", "m.json"
    )
    assert refused.returncode == 2 and "its sha256 differs" in refused.stderr


@pytest.mark.slow
def test_dvc_repro_reruns_hash_when_a_repacked_label_changes(sample: Path, tmp_path: Path) -> None:
    """The switch docs/SCALE.md describes, in a git + DVC repo: pack, `dvc add data-shards`, a
    `hash` stage with `--shards`; a label fixed and re-packed re-runs it and changes one line."""
    root = tmp_path / "repo"
    (root / "stages").mkdir(parents=True)
    shutil.copy2(REPO / "stages/hash.py", root / "stages/hash.py")
    (root / "params.yaml").write_text("hash:\n  workers: 1\n")
    (root / ".gitignore").write_text("/data\n.vigil/\n")
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  hash:\n"
        "    cmd: python stages/hash.py --shards data-shards --data data"
        " --files artifacts/hash/files.jsonl --metrics metrics/dataset.json\n"
        "    deps:\n      - stages/hash.py\n      - data-shards\n"
        "    params:\n      - hash\n"
        "    outs:\n      - artifacts/hash/files.jsonl:\n          persist: true\n"
        "    metrics:\n      - metrics/dataset.json:\n          cache: false\n"
    )

    def sh(*args: str) -> str:
        done = subprocess.run(args, cwd=root, env=_env(), capture_output=True, text=True)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    dvc = str(Path(sys.executable).with_name("dvc"))
    sh("git", "init", "-q")
    sh(dvc, "init", "-q")
    pack(sample, root / "data-shards")
    sh(dvc, "add", "-q", "data-shards")
    assert "Running stage 'hash'" in sh(dvc, "repro")
    files = root / "artifacts/hash/files.jsonl"
    before = files.read_text().splitlines()
    assert before == [e.to_json() for e in hash_tree(sample).entries]
    assert "Running stage 'hash'" not in sh(dvc, "repro")  # nothing changed, nothing runs

    edit_label(root / "data")  # the fix is made in data/, re-packed, and tracked again
    assert pack(root / "data", root / "data-shards").written == ["session-lab.tar"]
    sh(dvc, "add", "-q", "data-shards")
    assert "Running stage 'hash'" in sh(dvc, "repro")
    after = files.read_text().splitlines()
    assert len(after) == len(before)
    diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(diff) == 1 and json.loads(diff[0][1])["path"] == LAB_LABEL
