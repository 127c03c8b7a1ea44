"""sha256 of every file of a dataset, and the per-file manifest (`files.jsonl`) that records them.

The manifest (one object per file, sorted by path) is the contract the validate and split stages read:

    {"path": "images/lab/000001.jpg", "sha256": "…", "size": 1234, "kind": "image"}

How it runs, built for 100k–1M small files on few cores, where per-file Python work in one process,
not the disk, set the pace:

- The main process only lists folders (`os.scandir`, no stat). Each folder is a unit of work (a big
  one is cut into parts of SPLIT_FILES names); units go to worker processes in batches.
- A worker stats its files, takes each unchanged one (same size and mtime_ns) from the cache, hashes
  the rest, counts what label files and the manifest hold (`vigil.data.label_counts`), and hands back
  its folder's manifest lines and fingerprint lines as text, its counts (`Tally`), and, when anything
  changed, the folder's new cache records.
- The main process sorts the folders' runs of lines (a folder without subfolders is one run: no path
  of another folder sorts inside it) and joins them: it never handles a file on its own.

The cache (`vigil.data.hash_cache`) keeps one record list per folder, so an unchanged folder costs a
stat per file and no write. The summary of a dataset is `vigil.data.summary`; the diff of two versions
is `vigil.data.diff`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import stat
from collections import deque
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import Any

from vigil.atomic import write_text_atomic
from vigil.data.hash_cache import HEX, RootCache, check_cache_target, load_cache, save_cache
from vigil.data.label_counts import Tally, label_extra, manifest_extra
from vigil.data.layout import CLASSES, IMAGE_SUFFIXES, IMAGES, LABELS, MANIFEST
from vigil.errors import VigilError
from vigil.progress import progress

KINDS: tuple[str, ...] = ("image", "label", "manifest", "classes", "other")
CHUNK = 1 << 20  # bytes per read: big enough that hashlib drops the GIL, small enough for any file
PARALLEL_MIN = 2048  # files below which one process does it all (a pool costs more than it saves)
BATCH_FILES = 2048  # files per batch sent to a worker: few pickles, yet an even finish
SPLIT_FILES = 4096  # a folder with more files is hashed in parts of this many, by several workers
KEEP_BYTES = 1 << 16  # label files up to this size are counted from the bytes just hashed
COUNTED = frozenset({"label", "manifest"})  # kinds whose content the summary counts


@dataclass(frozen=True)
class FileEntry:
    """One line of the per-file manifest."""

    path: str  # POSIX, relative to the dataset root
    sha256: str
    size: int
    kind: str  # one of KINDS

    def to_json(self) -> str:
        # the text json.dumps gives for {"path", "sha256", "size", "kind"}; only the path needs escaping
        path = json.dumps(self.path, ensure_ascii=False)
        return f'{{"path": {path}, "sha256": "{self.sha256}", "size": {self.size}, "kind": "{self.kind}"}}'


@dataclass
class HashResult:
    """What one run found: the manifest and fingerprint of the dataset, its counts, and what it read."""

    manifest_text: str  # files.jsonl, sorted by path
    fingerprint: str  # see `fingerprint`
    tally: Tally  # the summary's counts (`vigil.data.summary.summary_from`)
    hashed: list[str] = field(default_factory=list)  # paths re-read this run, sorted
    hashed_bytes: int = 0
    cached: int = 0  # files taken from the cache
    # the cache as read and the record lists to give it (`save_hash_cache`), when a cache is used
    cache: RootCache = field(default_factory=RootCache, repr=False)
    folders: dict[str, str] = field(default_factory=dict, repr=False)
    cache_path: Path | None = None
    cache_key: str = ""
    code: str = ""

    @cached_property
    def entries(self) -> list[FileEntry]:
        """The manifest as objects (for the library's callers; the stage writes the text as it is)."""
        out = []
        for line in self.manifest_text.splitlines():
            r = json.loads(line)
            out.append(FileEntry(r["path"], r["sha256"], r["size"], r["kind"]))
        return out


@dataclass(frozen=True)
class _Found:
    rel: str
    path: str
    size: int
    mtime_ns: int
    kind: str = "other"


@dataclass(frozen=True)
class _Folder:
    path: str  # as walked from the root as given
    rel: str  # relative to the root: "" or ending in "/"
    names: list[str]  # its files (not bookkeeping, not excluded), sorted
    links: frozenset[str]  # which of them are symlinks
    leaf: bool  # no subfolder


@dataclass(frozen=True)
class _Unit:
    """A folder, or a part of a big one: what a worker hashes in one go."""

    folder: _Folder
    names: list[str]  # this unit's files, sorted
    cached: str | list[Any] | None  # the cached records: a folder's JSON text, or a part's list
    trust_extras: bool  # cached label/manifest counts were made by this code
    base: str  # the resolved root (a symlink must stay inside it)


@dataclass
class _Done:
    """A unit's result: runs of manifest and fingerprint lines, counts, and new records if any."""

    # this unit's cache records when anything changed (a whole folder's as JSON text), else None
    records: str | list[list[Any]] | None
    runs: list[
        tuple[str, str, str, str]
    ]  # (first path, last path, manifest lines, fingerprint lines)
    tally: Tally
    hashed: list[str] = field(default_factory=list)
    hashed_bytes: int = 0
    problem: tuple[str, str, str | None] | None = None  # (message, path, hint)


class _Problem(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def kind_of(rel: str) -> str:
    """Classify a relative path by the canonical layout (images/…, labels/…/*.txt, manifest, classes)."""
    if rel == MANIFEST:
        return "manifest"
    if rel == CLASSES:
        return "classes"
    top, sep, rest = rel.partition("/")
    if sep and top == IMAGES and _suffix(rest) in IMAGE_SUFFIXES:
        return "image"
    if sep and top == LABELS and rel.endswith(".txt"):
        return "label"
    return "other"


def _suffix(rel: str) -> str:
    """os.path.splitext(rel)[1].lower() without its generality (called once per file at 200k files)."""
    name = rel[rel.rfind("/") + 1 :].lstrip(".")  # splitext ignores a file name's leading dots
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def sha256_file(
    path: str | Path, size_hint: int = CHUNK, keep: bool = False
) -> tuple[str, int, bytes | None]:
    """sha256, byte count and (with `keep`, for a file of at most KEEP_BYTES) the bytes of one file:
    the only place file bytes are read for hashing (tests count calls here)."""
    # a small file is read in one call, EOF in the next; os.open/os.read, not open(): at 200k small
    # files the file object's own cost was a third of the time per file
    read_size = max(1, min(CHUNK, size_hint + 1))
    fd = os.open(path, os.O_RDONLY)
    try:
        chunk = os.read(fd, read_size)
        digest = hashlib.sha256(chunk)
        size = len(chunk)
        kept: list[bytes] | None = [chunk] if keep and size_hint <= KEEP_BYTES else None
        while chunk:
            chunk = os.read(fd, read_size)
            digest.update(chunk)
            size += len(chunk)
            if kept is not None and chunk:
                kept.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(kept) if kept is not None and size <= KEEP_BYTES else None
    return digest.hexdigest(), size, data


def _check_root(root: Path) -> None:
    if not root.exists():
        raise VigilError(
            "dataset folder not found",
            path=root,
            hint="pass the folder that holds images/, labels/, manifest.jsonl and classes.txt",
        )
    if not root.is_dir():
        raise VigilError("not a folder", path=root, hint="pass a dataset folder, not a file")


def _is_bookkeeping(name: str) -> bool:
    """DVC's and git's files inside a dataset (`dvc add data/images/s001` writes `s001.dvc` and a
    `.gitignore` beside it): never data, so a folder tracked in shards hashes like the flat one."""
    return name == ".gitignore" or name.endswith(".dvc")


def _walk(root: Path, skip: Collection[str]) -> Iterator[_Folder]:
    """Every folder under `root` with its files (depth first, names in order); lists, never stats a
    file (the d_type of `os.scandir`), except to refuse a symlinked folder."""
    skipped: dict[str, set[str]] = {}  # folder → names not to hash (the cache, the outputs)
    for rel in skip:
        folder, _, name = rel.rpartition("/")
        skipped.setdefault(f"{folder}/" if folder else "", set()).add(name)
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as listing:
                items = list(listing)
        except OSError as exc:
            raise VigilError(f"cannot list: {exc.strerror}", path=folder) from None
        names: list[str] = []
        links: set[str] = set()
        subfolders: list[tuple[str, str]] = []
        for item in items:
            try:
                if item.is_dir(follow_symlinks=False):
                    subfolders.append((item.path, f"{prefix}{item.name}/"))
                    continue
                if item.is_symlink():
                    if item.is_dir():
                        raise VigilError(
                            "symlinked folder inside the dataset",
                            path=item.path,
                            hint="replace the link with a real folder; hashing does not follow folder links",
                        )
                    links.add(item.name)
            except OSError as exc:
                raise VigilError(f"cannot read: {exc.strerror}", path=item.path) from None
            names.append(item.name)
        drop = {n for n in names if n == ".gitignore" or n.endswith(".dvc")}  # _is_bookkeeping
        drop |= skipped.get(prefix, set())
        if drop:
            names = [n for n in names if n not in drop]
        names.sort()
        stack.extend(sorted(subfolders, reverse=True))  # popped in name order
        yield _Folder(folder, prefix, names, frozenset(links), not subfolders)


def _stat_file(path: str, link: bool, base: str) -> os.stat_result:
    """The stat of a dataset file: a regular file, or a symlink to one inside the dataset folder."""
    if link:
        real = os.path.realpath(path)
        if not real.startswith(base + os.sep):
            raise _Problem(
                f"symlink points outside the dataset folder ({real})",
                "keep every file inside the dataset folder",
            )
    try:
        st = os.stat(path) if link else os.lstat(path)
    except OSError as exc:
        raise _Problem(f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _Problem("not a regular file", "remove it from the dataset folder")
    return st


def _extra(kind: str, path: str, data: bytes | None) -> Any:
    """What the summary counts of a label file or the manifest (kept in the cache beside its sha256)."""
    if kind == "manifest":
        return manifest_extra(Path(path))
    if data is None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
    return label_extra(data)


_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')  # what json.dumps(ensure_ascii=False) escapes
_SHA = re.compile(r"[0-9a-f]{64}")


def manifest_line(rel: str, sha: str, size: int, kind: str) -> str:
    """One line of files.jsonl: the text `FileEntry.to_json` gives, and a newline."""
    quoted = json.dumps(rel, ensure_ascii=False) if _NEEDS_ESCAPE.search(rel) else f'"{rel}"'
    return f'{{"path": {quoted}, "sha256": "{sha}", "size": {size}, "kind": "{kind}"}}\n'


def _known(cached: str | list[Any] | None) -> dict[str, list[Any]]:
    """A unit's cached records by file name (a cache that does not parse gives none; a record is
    checked when it is used, `_cached_sha`)."""
    if isinstance(cached, str):
        try:
            cached = json.loads(cached)
        except ValueError:
            return {}
    try:
        return {rec[0]: rec for rec in cached if type(rec) is list and len(rec) in (4, 5)}  # type: ignore[union-attr]
    except (TypeError, KeyError, IndexError):
        return {}


def _cached_sha(rec: list[Any] | None, size: int, mtime_ns: int) -> str | None:
    """The sha256 a cached record gives when its size and mtime still match, else None."""
    if rec is None or rec[1] != size or rec[2] != mtime_ns:
        return None
    sha = rec[3]
    return sha if type(sha) is str and _SHA.fullmatch(sha) else None


def _kinds_of(rel: str) -> tuple[str, str]:
    """(kind of a file of the folder `rel` with an image suffix, kind of one ending in .txt): the
    part of `kind_of` that depends on the folder, worked out once per folder."""
    top = rel.partition("/")[0]
    return ("image" if top == IMAGES else "other", "label" if top == LABELS else "other")


def _hash_unit(unit: _Unit) -> _Done:
    """Stat, take from the cache or hash, and count each file of one unit (runs in a worker).

    Per file this is the hot loop of a 200k-file dataset: no call that can be done once per folder."""
    folder = unit.folder
    known = _known(unit.cached)
    tally = Tally()
    sizes = dict.fromkeys(KINDS, 0)
    counts = dict.fromkeys(KINDS, 0)
    records: list[list[Any]] = []
    lines: list[str] = []
    prints: list[str] = []
    hashed: list[str] = []
    hashed_bytes = 0
    changed = False
    prefix, head = folder.rel, folder.path + os.sep
    escape = bool(_NEEDS_ESCAPE.search(prefix))
    image_kind, text_kind = _kinds_of(prefix)
    links, base = folder.links, unit.base
    lstat, isreg = os.lstat, stat.S_ISREG
    for name in unit.names:
        rel = prefix + name
        path = head + name
        try:
            if name in links:
                st = _stat_file(path, True, base)
            else:
                st = lstat(path)
                if not isreg(st.st_mode):
                    raise _Problem("not a regular file", "remove it from the dataset folder")
            size, mtime = st.st_size, st.st_mtime_ns
            if prefix:  # kind_of, with the folder's part worked out once
                if _suffix(name) in IMAGE_SUFFIXES:
                    kind = image_kind
                else:
                    kind = text_kind if name.endswith(".txt") else "other"
            else:
                kind = kind_of(rel)
            rec = known.pop(name, None)
            sha = _cached_sha(rec, size, mtime)
            if sha is not None:
                if kind not in COUNTED:
                    extra = None
                elif unit.trust_extras and len(rec) == 5:  # type: ignore[arg-type]
                    extra = rec[4]  # type: ignore[index]
                else:  # counted by other code, or by an older cache that did not count
                    extra = _extra(kind, path, None)
                    changed = True
            else:
                changed = True
                sha, read, data = sha256_file(path, size, kind == "label")
                if read != size:
                    raise _Problem(
                        f"changed while being hashed ({size} bytes listed, {read} read)",
                        "run again once nothing is writing to the dataset",
                    )
                hashed.append(rel)
                hashed_bytes += read
                extra = _extra(kind, path, data) if kind in COUNTED else None
        except _Problem as problem:
            return _Done(None, [], tally, problem=(problem.message, path, problem.hint))
        except OSError as exc:
            return _Done(None, [], tally, problem=(f"cannot read: {exc.strerror}", path, None))
        except VigilError as exc:
            return _Done(None, [], tally, problem=(exc.message, path, exc.hint))
        if kind in COUNTED:
            records.append([name, size, mtime, sha, extra])
            tally.add_file(kind, size, extra)
        else:
            records.append([name, size, mtime, sha])
            counts[kind] += 1
            sizes[kind] += size
        quoted = (
            json.dumps(rel, ensure_ascii=False)
            if escape or _NEEDS_ESCAPE.search(name)
            else f'"{rel}"'
        )
        lines.append(f'{{"path": {quoted}, "sha256": "{sha}", "size": {size}, "kind": "{kind}"}}\n')
        prints.append(f"{sha}  {rel}\n")
    for kind, n in counts.items():
        if n:
            tally.add_files(kind, n, sizes[kind])
    changed = changed or bool(known)  # files gone since the cache was written
    if folder.leaf and unit.names:
        first, last = prefix + unit.names[0], prefix + unit.names[-1]
        runs = [(first, last, "".join(lines), "".join(prints))]
    else:  # a folder with subfolders: their paths may sort between its files
        runs = [
            (prefix + n, prefix + n, m, f)
            for n, m, f in zip(unit.names, lines, prints, strict=True)
        ]
    kept: str | list[list[Any]] | None = None
    if changed:  # a whole folder's records go to the cache as they are, a part's are joined first
        whole = len(unit.names) == len(folder.names)
        kept = json.dumps(records, ensure_ascii=False, separators=(",", ":")) if whole else records
    return _Done(kept, runs, tally, hashed, hashed_bytes)


def _hash_units(units: list[_Unit]) -> list[_Done]:
    """One batch of units (what a worker process receives); stops at the first problem."""
    out = []
    for unit in units:
        out.append(_hash_unit(unit))
        if out[-1].problem is not None:
            break
    return out


def _units(
    folders: Iterable[_Folder], cache: RootCache, base: str, trust: bool, seen: list[_Folder]
) -> Iterator[_Unit]:
    """Each folder as one unit, or a big one cut into parts of SPLIT_FILES files, with its cached
    records (a part gets the records whose names fall in its range, gone files included); every
    folder is also appended to `seen`."""
    for folder in folders:
        seen.append(folder)
        if not folder.names:
            continue
        cached: str | list[Any] | None = cache.folders.get(folder.rel)
        if cached is None and cache.legacy is not None:
            cached = cache.legacy.get(folder.rel)
        if len(folder.names) <= SPLIT_FILES:
            yield _Unit(folder, folder.names, cached, trust, base)
            continue
        records = sorted(_known(cached).values(), key=lambda r: r[0])
        starts = list(range(0, len(folder.names), SPLIT_FILES))
        at = 0
        for i, start in enumerate(starts):
            names = folder.names[start : start + SPLIT_FILES]
            end = folder.names[starts[i + 1]] if i + 1 < len(starts) else None
            part = []
            while at < len(records) and (end is None or records[at][0] < end):
                part.append(records[at])
                at += 1
            yield _Unit(folder, names, part, trust, base)


def _batches(units: Iterable[_Unit], files: int) -> Iterator[list[_Unit]]:
    """`units` in order, in batches of about `files` files each."""
    current: list[_Unit] = []
    weight = 0
    for unit in units:
        current.append(unit)
        weight += len(unit.names)
        if weight >= files:
            yield current
            current, weight = [], 0
    if current:
        yield current


def _run(units: Iterable[_Unit], workers: int) -> Iterator[tuple[_Unit, _Done]]:
    """Each unit with its result, in order. Once PARALLEL_MIN files are listed the rest go to
    `workers` processes in batches as the folders are listed, so hashing overlaps the listing."""
    it = iter(units)
    head: list[_Unit] = []
    listed = 0
    if workers > 1:
        for unit in it:
            head.append(unit)
            listed += len(unit.names)
            if listed >= PARALLEL_MIN:
                break
    if workers == 1 or listed < PARALLEL_MIN:
        for batch in progress(_batches(chain(head, it), BATCH_FILES), desc="hash"):
            yield from zip(batch, _hash_units(batch), strict=False)  # a batch stops at a problem
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        pending: deque[tuple[list[_Unit], Future[list[_Done]]]] = deque()

        def submitted() -> Iterator[tuple[list[_Unit], list[_Done]]]:
            for batch in _batches(chain(head, it), BATCH_FILES):
                pending.append((batch, pool.submit(_hash_units, batch)))
                while pending and pending[0][1].done():
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()

        desc = f"hash ({workers} processes)"
        for batch, results in progress(submitted(), desc=desc):
            yield from zip(batch, results, strict=False)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def code_signature() -> str:
    """sha256 of the code that makes a cache record's counts: other code means count again."""
    import vigil.data.label_counts as counts
    import vigil.data.layout as layout

    digest = hashlib.sha256()
    for module in (__file__, counts.__file__, layout.__file__):
        digest.update(Path(str(module)).read_bytes())
    return digest.hexdigest()


def _skipped(root: Path, exclude: Collection[Path]) -> set[str]:
    base = root.resolve()
    skip = set()
    for p in exclude:
        real = Path(p).resolve()
        if base in real.parents:
            skip.add(real.relative_to(base).as_posix())
    return skip


def hash_tree(
    root: Path,
    *,
    workers: int = 2,
    cache_path: Path | None = None,
    exclude: Collection[Path] = (),
    save: bool = True,
) -> HashResult:
    """sha256 of every file under `root`; files whose (path, size, mtime_ns) match the cache are not read.

    The cache learns the new records unless `save` is false (then `save_hash_cache` writes them later)."""
    root = Path(root)
    _check_root(root)
    if workers < 1:
        raise VigilError(
            f"workers must be at least 1, got {workers}",
            field="hash.workers",
            hint="set hash.workers in params.yaml (or --workers) to 1 or more",
        )
    if cache_path is not None:
        # before any work: never overwrite a file that is not our cache
        check_cache_target(Path(cache_path))
    skip = [*exclude, cache_path] if cache_path is not None else list(exclude)
    key = str(root.resolve())
    code = code_signature()
    cache = load_cache(Path(cache_path), key) if cache_path is not None else RootCache()
    folders: list[_Folder] = []
    units = _units(_walk(root, _skipped(root, skip)), cache, key, cache.code == code, folders)
    tally = Tally()
    runs: list[tuple[str, str, str, str]] = []
    hashed: list[str] = []
    hashed_bytes = 0
    texts: dict[str, str] = {}  # folder → its new records (JSON), where it changed
    parts: dict[str, list[list[Any]]] = {}  # big folder → records of its parts that changed
    unchanged: dict[str, list[_Unit]] = {}
    for unit, done in _run(units, workers):
        if done.problem is not None:
            message, path, hint = done.problem
            raise VigilError(message, path=path, hint=hint)
        tally.add(done.tally)
        runs.extend(done.runs)
        hashed.extend(done.hashed)
        hashed_bytes += done.hashed_bytes
        rel = unit.folder.rel
        if isinstance(done.records, str):
            texts[rel] = done.records
        elif done.records is not None:
            parts.setdefault(rel, []).extend(done.records)
        else:
            unchanged.setdefault(rel, []).append(unit)
    runs.sort(key=lambda r: r[0])
    digest = hashlib.sha256()
    for run in runs:
        digest.update(run[3].encode("utf-8"))
    total = sum(len(f.names) for f in folders)
    result = HashResult(
        "".join(run[2] for run in runs),
        digest.hexdigest(),
        tally,
        sorted(hashed),
        hashed_bytes,
        total - len(hashed),
    )
    if cache_path is not None:
        result.cache, result.cache_path, result.cache_key, result.code = (
            cache,
            Path(cache_path),
            key,
            code,
        )
        result.folders = _new_folders(folders, cache, texts, parts, unchanged)
        if save:
            save_hash_cache(result)
    return result


def _new_folders(
    folders: list[_Folder],
    cache: RootCache,
    texts: dict[str, str],
    parts: dict[str, list[list[Any]]],
    unchanged: dict[str, list[_Unit]],
) -> dict[str, str]:
    """The cache's record lists after this run: an unchanged folder keeps its text as it was."""
    out: dict[str, str] = {}
    for folder in folders:
        rel = folder.rel
        if rel in texts:
            out[rel] = texts[rel]
            continue
        if rel not in parts:
            if rel in unchanged and rel in cache.folders:
                out[rel] = cache.folders[rel]
                continue
            if rel not in unchanged:  # no files (only subfolders)
                continue
        records = list(parts.get(rel, []))
        for unit in unchanged.get(rel, []):  # a big folder's unchanged parts, or an older cache's
            records.extend(_known(unit.cached).values())
        records.sort(key=lambda r: r[0])
        out[rel] = json.dumps(records, ensure_ascii=False, separators=(",", ":"))
    return out


def save_hash_cache(result: HashResult) -> None:
    """Write what `hash_tree` learned to its cache (only the folders that changed)."""
    if result.cache_path is not None:
        save_cache(result.cache_path, result.cache_key, result.cache, result.folders, result.code)


def scan_files(root: Path, exclude: Collection[Path] = ()) -> list[_Found]:
    """Every file `hash_tree` would hash, with its size and mtime, sorted by relative path (no bytes
    read; for benchmarks and tools that need the listing alone)."""
    root = Path(root)
    _check_root(root)
    base = str(root.resolve())
    found = []
    for folder in _walk(root, _skipped(root, exclude)):
        for name in folder.names:
            rel, path = folder.rel + name, os.path.join(folder.path, name)
            try:
                st = _stat_file(path, name in folder.links, base)
            except _Problem as problem:
                raise VigilError(problem.message, path=path, hint=problem.hint) from None
            found.append(_Found(rel, path, st.st_size, st.st_mtime_ns, kind_of(rel)))
    found.sort(key=lambda f: f.rel)
    return found


def fingerprint(entries: Iterable[FileEntry]) -> str:
    """sha256 over `<sha256>  <path>` lines sorted by path (the text `sha256sum` prints for those files)."""
    lines = "".join(f"{e.sha256}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def write_files_manifest(path: Path, entries: Iterable[FileEntry]) -> None:
    """Write the per-file manifest (JSON Lines, sorted by path) atomically."""
    lines = [e.to_json() + "\n" for e in sorted(entries, key=lambda e: e.path)]
    write_text_atomic(Path(path), "".join(lines))


def _entry_from(record: object, path: Path, line: int) -> FileEntry:
    if not isinstance(record, dict):
        raise VigilError("not a JSON object", path=path, line=line)
    rel, sha, size = record.get("path"), record.get("sha256"), record.get("size")
    if (
        not isinstance(rel, str)
        or not rel
        or rel.startswith("/")
        or ".." in PurePosixPath(rel).parts
    ):
        raise VigilError(
            f"bad path {rel!r}",
            path=path,
            line=line,
            field="path",
            hint="a POSIX path relative to the dataset folder",
        )
    if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= HEX:
        raise VigilError(
            f"bad sha256 {sha!r}",
            path=path,
            line=line,
            field="sha256",
            hint="64 lowercase hex digits; re-create the file with `vigil data hash`",
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise VigilError(
            f"bad size {size!r}", path=path, line=line, field="size", hint="a byte count"
        )
    kind = record.get("kind", kind_of(rel))
    if kind not in KINDS:
        raise VigilError(
            f"unknown kind {kind!r}",
            path=path,
            line=line,
            field="kind",
            hint=f"one of {', '.join(KINDS)}",
        )
    return FileEntry(rel, sha, size, kind)


def read_files_manifest(path: Path) -> list[FileEntry]:
    """Strict read of a per-file manifest written by `write_files_manifest`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VigilError(
            "per-file manifest not found",
            path=path,
            hint="pass a dataset folder or a files.jsonl written by `vigil data hash`",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VigilError(f"cannot read: {exc}", path=path) from None
    entries: dict[str, FileEntry] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise VigilError(
                f"not valid JSON ({exc.msg} at column {exc.colno})",
                path=path,
                line=number,
                hint="pass a files.jsonl written by `vigil data hash`",
            ) from None
        entry = _entry_from(record, path, number)
        if entry.path in entries:
            raise VigilError(f"duplicate path {entry.path!r}", path=path, line=number, field="path")
        entries[entry.path] = entry
    return sorted(entries.values(), key=lambda e: e.path)
