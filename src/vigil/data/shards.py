"""Tar shards: a dataset packed as one deterministic tar per session folder, and unpacked, checked.

A shards folder (`vigil data pack DATA --out data-shards`; docs/SCALE.md, "How to use tar shards"):

```
session-<s>.tar     images/<s>/… and labels/<s>/… of session <s>
folder-<f>.tar      every file under another top-level folder <f>/ (e.g. pool_truth/)
loose.tar           files directly under images/ or labels/ (in no session folder), if any
manifest.jsonl …    the dataset's root files (classes.txt, split lists, PROVENANCE.json), copied
index.jsonl         one line per file: {"path", "shard", "offset", "size", "sha256"}, sorted by
                    path; a root file has "shard" and "offset" null
```

A tar is uncompressed PAX, regular files only, members sorted by path, mode 0644, mtime, uid and
gid 0, no user or group name: the same files give the same bytes on any machine. `offset` is where
the member's bytes start in its tar (`read_member` seeks there).

`unpack` writes the canonical layout back into a data folder, only after every check passed, and
keeps a stamp of what it extracted at `<parent of data>/.vigil/shards/<name of data>.json` (outside
the data folder, so the dataset hashes as the flat one does): per tar its size, mtime and sha256,
per file its size, mtime and sha256 as extracted. A tar whose size and sha256 match the stamp, and
whose files are still in the data folder as extracted, is skipped; a file the stamp names that no
index line names is removed. A file the stamp does not name is kept only when its bytes are the
index's (a flat folder being switched to shards, or a lost stamp); any other file is refused, never
overwritten or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TypeGuard

from vigil.atomic import (  # the marked temp beside an output, swept once its writer is gone
    _clear_stale,
    _new_temp,
    atomic_dir,
    output_lock,
    write_text_atomic,
)
from vigil.data.hashing import FileEntry, hash_tree, sha256_file
from vigil.data.layout import IMAGES, LABELS, decode_lines, is_safe_relpath
from vigil.errors import VigilError
from vigil.progress import progress

INDEX = "index.jsonl"
STAMP_MARK = "shards-stamp"
_MODE = 0o644
_HEX = frozenset("0123456789abcdef")
_REPACK = "re-pack the data with `vigil data pack DATA --out SHARDS`"


@dataclass(frozen=True)
class Member:
    """One line of index.jsonl: a file of the dataset, and where its bytes are."""

    path: str  # POSIX, relative to the data folder
    shard: str | None  # the tar that holds it; None: a root file copied beside the tars
    offset: int | None  # where its bytes start in the tar; None for a root file
    size: int
    sha256: str

    def to_json(self) -> str:
        """The index line (keys in this order, no trailing newline)."""
        record = {
            "path": self.path,
            "shard": self.shard,
            "offset": self.offset,
            "size": self.size,
            "sha256": self.sha256,
        }
        return json.dumps(record, ensure_ascii=False)


@dataclass
class PackResult:
    """What `pack` wrote: every shard, the ones rewritten this run, and the root files."""

    out: Path
    files: int
    shards: list[str]
    written: list[str]
    root_files: list[str]
    changed: bool  # False: the folder already held exactly this, and nothing was written


@dataclass
class UnpackResult:
    """What `unpack` did: every shard, the ones extracted this run, and the stale files removed."""

    data: Path
    files: int
    shards: list[str]
    extracted: list[str]
    copied: list[str]  # root files written this run
    removed: list[str] = field(default_factory=list)


@dataclass
class _Stamp:
    """What the last unpack left: (size, mtime_ns, sha256) per source (a tar or a root file of the
    shards folder) and per extracted file, and the sha256 of each source's index lines."""

    tars: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    files: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)


# --- naming and the index -------------------------------------------------------------------------


def shard_of(rel: str) -> str | None:
    """The tar that holds file `rel` of a dataset, or None for a root file (copied beside the tars)."""
    top, sep, rest = rel.partition("/")
    if not sep:
        return None
    if top in (IMAGES, LABELS):
        session, inner, _ = rest.partition("/")
        return f"session-{session}.tar" if inner else "loose.tar"
    return f"folder-{top}.tar"


def is_canonical_relpath(rel: str) -> bool:
    """A safe relative path (`layout.is_safe_relpath`) written one way only: no `.`, `//` or end `/`."""
    return is_safe_relpath(rel) and rel != "." and PurePosixPath(rel).as_posix() == rel


def is_shard_name(name: object) -> bool:
    """A tar name an index may give: `*.tar`, one component, not hidden."""
    return (
        isinstance(name, str)
        and name.endswith(".tar")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and is_safe_relpath(name)
    )


def index_text(members: Iterable[Member]) -> str:
    """index.jsonl's text: one line per member, sorted by path."""
    return "".join(m.to_json() + "\n" for m in sorted(members, key=lambda m: m.path))


def _int(value: object) -> TypeGuard[int]:
    """A non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_index_line(record: object, where: Path, line: int) -> Member:
    """One index line as a Member; anything malformed or unsafe is a VigilError naming the line."""

    def bad(message: str) -> VigilError:
        return VigilError(message, path=where, line=line, hint=_REPACK)

    if not isinstance(record, dict):
        raise bad("not a JSON object")
    path, shard, offset = record.get("path"), record.get("shard"), record.get("offset")
    size, sha = record.get("size"), record.get("sha256")
    if not isinstance(path, str) or not is_canonical_relpath(path):
        raise bad(f"unsafe path {path!r}: absolute, climbs out with '..', or not canonical")
    if shard is None:
        if offset is not None or "/" in path or path == INDEX or path.endswith(".tar"):
            raise bad(
                f"{path!r} has no shard, so it must be a root file other than a tar or {INDEX}"
            )
    elif not is_shard_name(shard):
        raise bad(f"unsafe shard name {shard!r}: a shard is one `*.tar` file beside {INDEX}")
    elif not _int(offset):
        raise bad(f"offset {offset!r} is not a byte offset")
    if not _int(size):
        raise bad(f"size {size!r} is not a byte count")
    if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _HEX:
        raise bad(f"sha256 {sha!r} is not 64 lowercase hex digits")
    return Member(path, shard, offset if _int(offset) else None, size, sha)


def folder_collision(paths: Iterable[str]) -> tuple[str, str] | None:
    """(a, b) where file `a` would have to be a folder of file `b`, or None when no path is both."""
    names = set(paths)
    for rel in sorted(names):
        parts = rel.split("/")
        for end in range(1, len(parts)):
            prefix = "/".join(parts[:end])
            if prefix in names:
                return prefix, rel
    return None


def read_index(shards: Path) -> list[Member]:
    """Every line of `shards/index.jsonl`, checked: well formed, safe paths, no path twice, none a
    folder of another."""
    path = Path(shards) / INDEX
    if not path.is_file():
        raise VigilError(
            f"no {INDEX} here: not a shards folder",
            path=shards,
            hint="write one with `vigil data pack DATA --out FOLDER`",
        )
    members: list[Member] = []
    seen: dict[str, int] = {}
    for number, text, problem in decode_lines(path.read_bytes()):
        if problem is not None:
            raise VigilError(problem, path=path, line=number, hint=_REPACK)
        if not (text or "").strip():
            continue
        try:
            record = json.loads(text or "")
        except (json.JSONDecodeError, RecursionError):
            raise VigilError("not valid JSON", path=path, line=number, hint=_REPACK) from None
        member = parse_index_line(record, path, number)
        if member.path in seen:
            raise VigilError(
                f"{member.path!r} is listed twice (also line {seen[member.path]})",
                path=path,
                line=number,
                hint=_REPACK,
            )
        seen[member.path] = number
        members.append(member)
    clash = folder_collision(seen)
    if clash is not None:
        raise VigilError(
            f"{clash[0]!r} is a file, yet {clash[1]!r} needs it to be a folder",
            path=path,
            line=seen[clash[0]],
            hint=_REPACK,
        )
    return members


def _by_shard(members: Iterable[Member]) -> tuple[dict[str, list[Member]], list[Member]]:
    """(index lines per tar, root files), each sorted by path."""
    groups: dict[str, list[Member]] = {}
    roots: list[Member] = []
    for m in sorted(members, key=lambda m: m.path):
        if m.shard is None:
            roots.append(m)
        else:
            groups.setdefault(m.shard, []).append(m)
    return groups, roots


def _check_folder_contents(folder: Path, members: Sequence[Member]) -> None:
    """The shards folder holds exactly index.jsonl and the tars and root files the index names."""
    named = {INDEX} | {m.shard or m.path for m in members}
    for item in sorted(folder.iterdir()):
        if item.name not in named:
            raise VigilError(
                f"{item.name!r} is not named by {INDEX}",
                path=item,
                hint=f"move it out of the shards folder, or {_REPACK}",
            )
    for name in sorted(named):
        if not (folder / name).is_file():
            raise VigilError(
                f"{INDEX} names {name!r}, which is missing or not a file",
                path=folder / name,
                hint=_REPACK,
            )


# --- tars -----------------------------------------------------------------------------------------


def tar_info(rel: str, size: int) -> tarfile.TarInfo:
    """The header of one regular-file member, with nothing of the machine in it (deterministic)."""
    info = tarfile.TarInfo(rel)
    info.type = tarfile.REGTYPE
    info.size = size
    info.mode = _MODE
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _HashingReader:
    """A file object that hashes what tarfile reads through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.digest.update(chunk)
        return chunk


def write_shard(path: Path, files: Sequence[tuple[str, Path]]) -> list[Member]:
    """Write one deterministic tar at `path` of `files` ((path in the tar, source file) pairs), in
    path order, and return its index lines (sha256 computed from the bytes written)."""
    digests: dict[str, str] = {}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel, source in sorted(files):
            with open(source, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                reader = _HashingReader(handle)
                try:
                    tar.addfile(tar_info(rel, size), reader)
                except OSError:
                    raise VigilError(
                        "changed while being packed (shorter than when listed)",
                        path=source,
                        hint="run again once nothing is writing to the dataset",
                    ) from None
                digests[rel] = reader.digest.hexdigest()
                if handle.read(1):
                    raise VigilError(
                        "changed while being packed (longer than when listed)",
                        path=source,
                        hint="run again once nothing is writing to the dataset",
                    )
    with tarfile.open(path, "r:") as tar:
        return [
            Member(info.name, path.name, info.offset_data, info.size, digests[info.name])
            for info in tar
        ]


def expected_tar_size(members: Sequence[Member]) -> int:
    """The size of the tar `write_shard` writes for these members (its last member's end, the two
    zero blocks, padded to tarfile's record size): a cheap check that a tar is whole."""
    last = max(members, key=lambda m: m.offset or 0)
    blocks = -(-last.size // tarfile.BLOCKSIZE)
    end = (last.offset or 0) + blocks * tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE
    return -(-end // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def read_member(shards: Path, member: Member) -> bytes:
    """The bytes of one file of a shard, by its index line (one seek, one read)."""
    if member.shard is None:
        return (Path(shards) / member.path).read_bytes()
    with (Path(shards) / member.shard).open("rb") as handle:
        handle.seek(member.offset or 0)
        return handle.read(member.size)


def _link_or_copy(src: Path, dst: Path) -> None:
    """`dst` as the same file as `src` (a hard link keeps its bytes and mtime), else a copy with
    its mtime."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """Copy `src` to `dst` and return (sha256, size) of the bytes copied."""
    digest, size = hashlib.sha256(), 0
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --- pack -----------------------------------------------------------------------------------------


def _inside(a: Path, b: Path) -> bool:
    """`a` is `b` or lies under it (paths resolved)."""
    ra, rb = a.resolve(), b.resolve()
    return ra == rb or rb in ra.parents


def _check_apart(data: Path, shards: Path) -> None:
    if _inside(shards, data) or _inside(data, shards):
        raise VigilError(
            "the data folder and the shards folder must not contain one another",
            path=shards,
            hint="put the shards beside the data folder, e.g. data-shards/ next to data/",
        )


def _previous_pack(out: Path) -> dict[str, Member]:
    """The index of the shards folder `pack` is about to update ({} when there is none yet); a
    folder holding anything else is refused, so a pack never deletes a file it did not write."""
    if not os.path.lexists(out):
        return {}
    if out.is_symlink() or not out.is_dir():
        raise VigilError("not a folder", path=out, hint="choose a folder for --out")
    if not (out / INDEX).exists():
        if any(out.iterdir()):
            raise VigilError(
                f"this folder holds files but no {INDEX}: it is not a shards folder vigil wrote",
                path=out,
                hint="choose a new or empty folder for --out",
            )
        return {}
    members = read_index(out)
    _check_folder_contents(out, members)
    return {m.path: m for m in members}


def _tar_intact(path: Path, members: Sequence[Member]) -> bool:
    try:
        return bool(members) and path.stat().st_size == expected_tar_size(members)
    except OSError:
        return False


def pack(data: Path, out: Path, *, workers: int = 2, cache_path: Path | None = None) -> PackResult:
    """Pack dataset folder `data` into tar shards in `out` (see the module docstring).

    Only shards whose files (path, size, sha256) differ from `out`'s index are written again; the
    others are kept as the same files (same bytes, same mtime), and an unchanged dataset writes
    nothing at all. `out` is replaced whole and atomically: a failed pack leaves it as it was.
    `workers` and `cache_path` are the hash's (`hash_tree`): files the cache knows are not re-read.
    """
    data, out = Path(data), Path(out)
    if not data.is_dir():
        raise VigilError("dataset folder not found", path=data, hint="pass the folder to pack")
    _check_apart(data, out)
    try:
        with output_lock(out, field="--out"):
            old = _previous_pack(out)
            entries = hash_tree(data, workers=workers, cache_path=cache_path).entries
            return _pack_entries(data, out, entries, old)
    except OSError as exc:
        raise VigilError(f"cannot pack ({exc.strerror or exc})", path=exc.filename or out) from None


def _pack_entries(
    data: Path, out: Path, entries: list[FileEntry], old: dict[str, Member]
) -> PackResult:
    if not entries:
        raise VigilError("nothing to pack: the folder holds no files", path=data)
    groups: dict[str, list[FileEntry]] = {}
    roots: list[FileEntry] = []
    for entry in entries:
        shard = shard_of(entry.path)
        if shard is None:
            roots.append(entry)
        else:
            groups.setdefault(shard, []).append(entry)
    for entry in roots:
        if entry.path == INDEX or entry.path.endswith(".tar"):
            raise VigilError(
                f"a root file named {entry.path!r} would take the place of the shards' own files",
                path=data / entry.path,
                hint="move it into a subfolder of the dataset",
            )
    previous = _by_shard(old.values())[0]
    keep = {
        shard: [(m.path, m.size, m.sha256) for m in previous.get(shard, [])]
        == [(e.path, e.size, e.sha256) for e in files]
        and _tar_intact(out / shard, previous[shard])
        for shard, files in groups.items()
    }
    root_members = [Member(e.path, None, None, e.size, e.sha256) for e in roots]
    keep_root = {
        m.path: old.get(m.path) == m and _size(out / m.path) == m.size for m in root_members
    }
    kept = [m for shard in groups if keep[shard] for m in previous[shard]]
    text = index_text([*kept, *root_members])
    result = PackResult(
        out,
        len(entries),
        sorted(groups),
        sorted(s for s in groups if not keep[s]),
        [m.path for m in root_members],
        changed=True,
    )
    if all(keep.values()) and all(keep_root.values()) and _read_text(out / INDEX) == text:
        result.changed = False
        return result
    members = list(kept)
    with atomic_dir(out) as new:
        for shard in progress(sorted(groups), desc="pack", total=len(groups)):
            if keep[shard]:
                _link_or_copy(out / shard, new / shard)
                continue
            files = groups[shard]
            written = write_shard(new / shard, [(e.path, data / e.path) for e in files])
            listed = {e.path: e.sha256 for e in files}
            for m in written:
                if listed[m.path] != m.sha256:
                    raise VigilError(
                        "changed while being packed (its sha256 differs from the hash's)",
                        path=data / m.path,
                        hint="run again once nothing is writing to the dataset",
                    )
            members += written
        for m in root_members:
            if keep_root[m.path]:
                _link_or_copy(out / m.path, new / m.path)
            elif _copy_hashed(data / m.path, new / m.path) != (m.sha256, m.size):
                raise VigilError(
                    "changed while being packed",
                    path=data / m.path,
                    hint="run again once nothing is writing to the dataset",
                )
        (new / INDEX).write_text(index_text([*members, *root_members]), encoding="utf-8")
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


# --- unpack ---------------------------------------------------------------------------------------


def stamp_path(data: Path) -> Path:
    """Where `unpack` keeps its stamp for data folder `data`: `<parent>/.vigil/shards/<name>.json`."""
    folder = Path(os.path.abspath(data))
    return folder.parent / ".vigil" / "shards" / f"{folder.name}.json"


def _triples(value: object) -> dict[str, tuple[int, int, str]] | None:
    if not isinstance(value, dict):
        return None
    out: dict[str, tuple[int, int, str]] = {}
    for key, row in value.items():
        if not (isinstance(row, list) and len(row) == 3 and _int(row[0]) and _int(row[1])):
            return None
        if not isinstance(row[2], str):
            return None
        out[key] = (row[0], row[1], row[2])
    return out


def _load_stamp(path: Path) -> _Stamp:
    """The last unpack's stamp; none yet gives an empty one. A file vigil did not write is refused."""
    if not os.path.lexists(path):
        return _Stamp()
    hint = "move it away: vigil never overwrites a file it did not write"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise VigilError("not vigil's unpack stamp (unreadable)", path=path, hint=hint) from None
    if not isinstance(record, dict) or record.get("vigil") != STAMP_MARK:
        raise VigilError("not vigil's unpack stamp", path=path, hint=hint)
    tars, files, lines = (
        _triples(record.get("tars")),
        _triples(record.get("files")),
        record.get("lines"),
    )
    if (
        tars is None
        or files is None
        or not isinstance(lines, dict)
        or not all(isinstance(v, str) for v in lines.values())
    ):
        raise VigilError(
            "the unpack stamp is damaged",
            path=path,
            hint="delete it; the next unpack checks the data folder against the index instead",
        )
    return _Stamp(tars, files, lines)


def _save_stamp(path: Path, stamp: _Stamp) -> None:
    record = {
        "vigil": STAMP_MARK,
        "version": 1,
        "tars": {k: list(v) for k, v in sorted(stamp.tars.items())},
        "files": {k: list(v) for k, v in sorted(stamp.files.items())},
        "lines": dict(sorted(stamp.lines.items())),
    }
    write_text_atomic(path, json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")


def _is_bookkeeping(name: str) -> bool:
    """DVC's and git's files, which the hash skips too (`vigil.data.hashing`): never data."""
    return name == ".gitignore" or name.endswith(".dvc")


def _scan_data(data: Path) -> tuple[dict[str, os.stat_result], set[str]]:
    """(regular files → stat, folders) under `data`, as relative paths; a link or a special file is
    refused (unpack writes only regular files and never writes through a link)."""
    files: dict[str, os.stat_result] = {}
    folders: set[str] = set()
    if not os.path.lexists(data):
        return files, folders

    def fail(exc: OSError) -> None:
        raise VigilError(f"cannot list ({exc.strerror})", path=exc.filename or data)

    for top, dirnames, filenames in os.walk(data, onerror=fail):
        prefix = os.path.relpath(top, data).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        for name in [*dirnames, *filenames]:
            st = os.lstat(os.path.join(top, name))
            rel = prefix + name
            if stat.S_ISDIR(st.st_mode):
                folders.add(rel)
            elif stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                raise VigilError(
                    "a link or special file in the data folder",
                    path=data / rel,
                    hint="unpack writes only regular files; move it out of the data folder",
                )
            elif not _is_bookkeeping(name):
                files[rel] = st
    return files, folders


def _classify(
    data: Path, present: dict[str, os.stat_result], stamp: _Stamp, by_path: dict[str, Member]
) -> tuple[set[str], list[str]]:
    """(files already as the index wants them, stale files vigil extracted that no line names).

    A file vigil did not leave as it is (its size or mtime differ from the stamp, or the stamp does
    not name it) is kept only when its bytes are the index's; otherwise it is refused."""
    good: set[str] = set()
    stale: list[str] = []
    for rel, st in sorted(present.items()):
        row, want = stamp.files.get(rel), by_path.get(rel)
        if row is not None and row[:2] == (st.st_size, st.st_mtime_ns):
            if want is None:
                stale.append(rel)
            elif (row[0], row[2]) == (want.size, want.sha256):
                good.add(rel)
            continue
        if want is not None and st.st_size == want.size:
            if sha256_file(data / rel, st.st_size)[0] == want.sha256:
                good.add(rel)
                continue
        if row is not None:
            raise VigilError(
                "changed since vigil extracted it, and the shards hold other bytes",
                path=data / rel,
                hint="pack the data first (`vigil data pack`), or delete the file to get the "
                "shards' copy back",
            )
        what = "differs from the shards' copy" if want else f"is not from the shards ({INDEX})"
        raise VigilError(
            f"this file {what}, and vigil did not extract it",
            path=data / rel,
            hint="move it out of the data folder: unpack never overwrites or deletes a file it "
            "cannot account for",
        )
    return good, stale


def _refuse(tar_path: Path, name: str, message: str) -> VigilError:
    return VigilError(
        f"member {name!r}: {message}; nothing was unpacked",
        path=tar_path,
        hint=f"{_REPACK}; never unpack shards from an unknown source",
    )


def _check_members(tar_path: Path, infos: list[tarfile.TarInfo], want: dict[str, Member]) -> None:
    """Every header of a tar against the index, before a byte is extracted."""
    seen: set[str] = set()
    for info in infos:
        name = info.name
        if name in seen:
            raise _refuse(tar_path, name, "appears twice in the tar")
        seen.add(name)
        if not is_safe_relpath(name):
            raise _refuse(tar_path, name, "absolute, or climbs out with '..'")
        if info.issym() or info.islnk():
            raise _refuse(tar_path, name, "a link (shards hold regular files only)")
        if info.ischr() or info.isblk() or info.isfifo():
            raise _refuse(tar_path, name, "a device or fifo (shards hold regular files only)")
        if not info.isreg():
            raise _refuse(tar_path, name, "not a regular file")
        member = want.get(name)
        if member is None:
            raise _refuse(tar_path, name, f"not in {INDEX} for this shard")
        if info.size != member.size:
            raise _refuse(tar_path, name, f"{info.size} bytes, {INDEX} says {member.size}")
        if info.offset_data != member.offset:
            raise _refuse(
                tar_path, name, f"at byte {info.offset_data}, {INDEX} says {member.offset}"
            )
    missing = sorted(set(want) - seen)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise VigilError(
            f"{INDEX} names {missing[0]!r}{more} in this shard, but the tar lacks it; "
            "nothing was unpacked",
            path=tar_path,
            hint=_REPACK,
        )


def _extract(tar_path: Path, members: Sequence[Member], dest: Path) -> dict[str, Path]:
    """Check one tar against its index lines and extract it under `dest` (a temp), each file's
    sha256 checked and its mtime set to now; returns path → extracted file."""
    want = {m.path: m for m in members}
    try:
        with tarfile.open(tar_path, "r:") as tar:
            infos = tar.getmembers()
            _check_members(tar_path, infos, want)
            staged: dict[str, Path] = {}
            for info in progress(infos, desc=f"unpack {tar_path.name}", total=len(infos)):
                try:
                    tar.extract(info, dest, filter="data")
                except tarfile.FilterError as exc:
                    message = f"refused by tarfile's data filter ({exc})"
                    raise _refuse(tar_path, info.name, message) from None
                target = dest / info.name
                os.utime(target)  # now: tarfile set the zeroed mtime; the hash cache keys on mtime
                sha, size, _ = sha256_file(target, info.size)
                if (sha, size) != (want[info.name].sha256, want[info.name].size):
                    raise _refuse(tar_path, info.name, f"its sha256 differs from {INDEX}")
                staged[info.name] = target
    except tarfile.TarError as exc:
        raise VigilError(f"not a readable tar ({exc})", path=tar_path, hint=_REPACK) from None
    return staged


def _tar_state(path: Path, row: tuple[int, int, str] | None) -> tuple[int, int, str]:
    """(size, mtime_ns, sha256) of a tar; the sha256 is the stamp's when size and mtime match it."""
    st = path.stat()
    if row is not None and row[:2] == (st.st_size, st.st_mtime_ns):
        return row
    return st.st_size, st.st_mtime_ns, sha256_file(path, st.st_size)[0]


def _lines_digest(members: Sequence[Member]) -> str:
    """sha256 of a source's index lines (a changed line, offsets included, makes it read again)."""
    return hashlib.sha256(index_text(members).encode("utf-8")).hexdigest()


def _only_stale(data: Path, folder: str, stale: set[str]) -> bool:
    """Whether every file under `data/folder` (DVC's and git's included) is a stale one."""
    for top, _, filenames in os.walk(data / folder):
        prefix = os.path.relpath(top, data).replace(os.sep, "/")
        if any(f"{prefix}/{name}" not in stale for name in filenames):
            return False
    return True


def _remove_empty_folders(folder: Path) -> None:
    """Remove a folder that holds only empty folders (what removing stale files can leave where a
    file now goes); anything else in it makes this fail."""
    for top, dirnames, _ in os.walk(folder, topdown=False):
        for name in dirnames:
            os.rmdir(os.path.join(top, name))
    os.rmdir(folder)


def _prune(data: Path, rel: str) -> None:
    """Remove the folders a removed file leaves empty, up to (not including) `data`."""
    folder = (data / rel).parent
    while folder != data and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def unpack(shards: Path, data: Path, *, stamp: Path | None = None) -> UnpackResult:
    """Unpack tar shards (`pack`'s folder) into the data folder, checked (see the module docstring).

    Every tar to extract is checked against the index (regular files only, safe paths, no member
    twice, none missing or extra, sizes, offsets, sha256) and extracted into a temp beside `data`;
    only when all passed are its files moved into `data`. A refusal is one VigilError naming the
    shard and the member, with `data` left as it was. Extracted files get the time of extraction
    as mtime. `stamp` defaults to `stamp_path(data)`.
    """
    shards, data = Path(shards), Path(data)
    if not shards.is_dir():
        raise VigilError(
            "shards folder not found", path=shards, hint="pass a `vigil data pack` folder"
        )
    _check_apart(data, shards)
    if os.path.lexists(data) and not data.is_dir():
        raise VigilError("not a folder", path=data, hint="choose a folder for the unpacked data")
    stamp_file = Path(stamp) if stamp is not None else stamp_path(data)
    index = read_index(shards)
    _check_folder_contents(shards, index)
    try:
        with output_lock(data, field="--out"):
            return _unpack(shards, data, index, stamp_file)
    except OSError as exc:
        raise VigilError(
            f"cannot unpack ({exc.strerror or exc})", path=exc.filename or data
        ) from None


def _unpack(shards: Path, data: Path, index: list[Member], stamp_file: Path) -> UnpackResult:
    old = _load_stamp(stamp_file)
    by_path = {m.path: m for m in index}
    present, folders = _scan_data(data)
    good, stale = _classify(data, present, old, by_path)
    removable = set(stale)
    for m in index:  # a folder where a file goes: only one holding nothing but stale files may go
        if m.path in folders and not _only_stale(data, m.path, removable):
            raise VigilError(
                "a folder is where the shards have a file",
                path=data / m.path,
                hint="move the folder out of the data folder",
            )
    groups, roots = _by_shard(index)
    sources = {name: [*members] for name, members in groups.items()}
    sources.update({m.path: [m] for m in roots})  # a root file is checked like a tar
    tars = {name: _tar_state(shards / name, old.tars.get(name)) for name in sources}
    lines = {name: _lines_digest(members) for name, members in sources.items()}

    def fresh(name: str) -> bool:
        """The source is the one the last unpack read, with the same index lines, and every file
        of it is in the data folder as the index wants."""
        row = old.tars.get(name)
        return (
            row is not None
            and (row[0], row[2]) == (tars[name][0], tars[name][2])
            and old.lines.get(name) == lines[name]
            and all(m.path in good for m in sources[name])
        )

    need = [name for name in groups if not fresh(name)]
    copy = [m for m in roots if not fresh(m.path)]
    result = UnpackResult(data, len(index), sorted(groups), sorted(need), [m.path for m in copy])
    staged: dict[str, Path] = {}
    if need or copy or stale:
        _apply(shards, data, groups, need, copy, stale, staged, result)
    files: dict[str, tuple[int, int, str]] = {}
    for m in index:
        st = present[m.path] if m.path not in staged else (data / m.path).stat()
        files[m.path] = (st.st_size, st.st_mtime_ns, m.sha256)
    _save_stamp(stamp_file, _Stamp(tars, files, lines))
    return result


def _apply(
    shards: Path,
    data: Path,
    groups: dict[str, list[Member]],
    need: list[str],
    copy: list[Member],
    stale: list[str],
    staged: dict[str, Path],
    result: UnpackResult,
) -> None:
    """Extract and check into a temp beside `data`, then remove the stale files and move the new
    ones in (filling `staged` and `result.removed`)."""
    _clear_stale(data)
    box = _new_temp(data)
    try:
        for name in need:
            staged.update(_extract(shards / name, groups[name], box / "new"))
        for m in copy:
            target = box / "new" / m.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if _copy_hashed(shards / m.path, target) != (m.sha256, m.size):
                raise VigilError(
                    f"its sha256 differs from {INDEX}; nothing was unpacked",
                    path=shards / m.path,
                    hint=_REPACK,
                )
            staged[m.path] = target
        # every check passed: only now is the data folder touched
        data.mkdir(exist_ok=True)
        for rel in stale:
            (data / rel).unlink()
            _prune(data, rel)
            result.removed.append(rel)
        for rel, source in progress(sorted(staged.items()), desc="move", total=len(staged)):
            target = data / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                _remove_empty_folders(target)
            os.replace(source, target)
    finally:
        shutil.rmtree(box, ignore_errors=True)


# --- one-line summaries ---------------------------------------------------------------------------


def describe_pack(result: PackResult) -> str:
    """`vigil data pack`'s one line."""
    what = (
        f"{len(result.written)} written, {len(result.shards) - len(result.written)} unchanged"
        if result.changed
        else "unchanged, nothing written"
    )
    return (
        f"packed {result.files} files into {result.out}: {len(result.shards)} shards ({what}), "
        f"{len(result.root_files)} root files"
    )


def describe_unpack(result: UnpackResult) -> str:
    """`vigil data unpack`'s (and the hash stage's) one line."""
    skipped = len(result.shards) - len(result.extracted)
    return (
        f"unpacked {result.files} files into {result.data}: {len(result.shards)} shards "
        f"({len(result.extracted)} extracted, {skipped} unchanged), {len(result.copied)} root "
        f"files copied, {len(result.removed)} stale files removed"
    )
