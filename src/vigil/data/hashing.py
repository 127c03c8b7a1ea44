"""sha256 of every file of a dataset, and the per-file manifest (`files.jsonl`) that records them.

Hashing is parallel (processes, in batches of files: at 100k small files the per-file cost of a
thread pool, not the disk, set the pace) and incremental: the cache of `vigil.data.hash_cache`, keyed
on (relative path, size, mtime_ns), lets a re-run re-read only the files that changed. The per-file
manifest (one object per file, sorted by path) is the contract the validate and split stages read:

    {"path": "images/lab/000001.jpg", "sha256": "…", "size": 1234, "kind": "image"}

The summary of a dataset is `vigil.data.summary`; the diff of two versions is `vigil.data.diff`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Collection, Iterable
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vigil.atomic import write_text_atomic
from vigil.data.hash_cache import (
    HEX,
    RootCache,
    Row,
    cached_sha,
    check_cache_target,
    load_cache,
    save_cache,
)
from vigil.data.label_counts import LabelCounts, count_label_bytes
from vigil.data.layout import CLASSES, IMAGE_SUFFIXES, IMAGES, LABELS, MANIFEST
from vigil.errors import VigilError
from vigil.progress import progress

KINDS: tuple[str, ...] = ("image", "label", "manifest", "classes", "other")
CHUNK = 1 << 20  # bytes per read: big enough that hashlib drops the GIL, small enough for any file
# files to hash below which one process does it (a pool costs more than it saves)
PARALLEL_MIN = 2048
# batches per process: few pickles, yet an even finish and a moving progress bar
BATCHES_PER_WORKER = 16
BATCH_BYTES = 256 << 20  # bytes a batch may read at most (big files: smaller batches)
# label files up to this size are counted as they are hashed (the summary's input)
KEEP_BYTES = 1 << 16


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
    """Entries sorted by path, plus what this run had to read (for the incremental report)."""

    entries: list[FileEntry]
    hashed: list[str] = field(default_factory=list)  # paths re-read this run, sorted
    cached: int = 0  # entries taken from the cache
    # what the cache held, and the rows to give it (`save_hash_cache`), when a cache is used
    cache: RootCache = field(default_factory=RootCache, repr=False)
    rows: dict[str, Row] = field(default_factory=dict, repr=False)
    cache_path: Path | None = None
    cache_key: str = ""
    # label files counted as they were hashed (the summary's input)
    label_counts: dict[str, LabelCounts] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class _Found:
    rel: str
    path: str
    size: int
    mtime_ns: int
    kind: str = "other"  # kind_of(rel), computed once in the scan


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
    digest = hashlib.sha256()
    size = 0
    kept: list[bytes] | None = [] if keep and size_hint <= KEEP_BYTES else None
    # a small file is read in one call, EOF in the next
    read_size = max(1, min(CHUNK, size_hint + 1))
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(read_size):
            digest.update(chunk)
            size += len(chunk)
            if kept is not None:
                kept.append(chunk)
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


def scan_files(root: Path, exclude: Collection[Path] = ()) -> list[_Found]:
    """Every regular file under `root`, sorted by POSIX relative path; a symlink may not leave `root`."""
    base = root.resolve()
    skip = set()
    for p in exclude:
        real = Path(p).resolve()
        if base in real.parents:
            skip.add(real.relative_to(base).as_posix())
    found: list[_Found] = []
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as listing:
                items = list(listing)
        except OSError as exc:
            raise VigilError(f"cannot list: {exc.strerror}", path=folder) from None
        for item in items:
            rel = prefix + item.name
            try:
                if item.is_dir(follow_symlinks=False):
                    stack.append((item.path, rel + "/"))
                    continue
                if item.is_symlink():
                    if item.is_dir():
                        raise VigilError(
                            "symlinked folder inside the dataset",
                            path=item.path,
                            hint="replace the link with a real folder; hashing does not follow folder links",
                        )
                    real = Path(item.path).resolve()
                    if base not in real.parents:
                        raise VigilError(
                            f"symlink points outside the dataset folder ({real})",
                            path=item.path,
                            hint="keep every file inside the dataset folder",
                        )
                st = item.stat()
            except OSError as exc:
                raise VigilError(f"cannot read: {exc.strerror}", path=item.path) from None
            if rel in skip or _is_bookkeeping(item.name):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise VigilError(
                    "not a regular file", path=item.path, hint="remove it from the dataset folder"
                )
            found.append(_Found(rel, item.path, st.st_size, st.st_mtime_ns, kind_of(rel)))
    found.sort(key=lambda f: f.rel)
    return found


def _hash_batch(
    batch: list[tuple[str, int, bool]],
) -> list[tuple[str, str, LabelCounts | None]]:
    """(sha256, problem, label counts) of each (path, listed size, is a label); a file that fails
    gives ("", problem, None) instead of raising, so a worker process hands back plain data."""
    out: list[tuple[str, str, LabelCounts | None]] = []
    for path, listed, keep in batch:
        try:
            sha, size, data = sha256_file(path, listed, keep)
        except OSError as exc:
            out.append(("", f"cannot read: {exc.strerror}", None))
            continue
        if size != listed:
            problem = f"changed while being hashed ({listed} bytes listed, {size} read)"
            out.append(("", problem, None))
            continue
        out.append((sha, "", count_label_bytes(data) if data is not None else None))
    return out


def _batches(todo: list[_Found], workers: int) -> list[list[tuple[str, int, bool]]]:
    """Contiguous batches: about BATCHES_PER_WORKER per worker, each at most BATCH_BYTES to read."""
    target = max(1, len(todo) // (workers * BATCHES_PER_WORKER))
    batches: list[list[tuple[str, int, bool]]] = []
    current: list[tuple[str, int, bool]] = []
    weight = 0
    for f in todo:
        current.append((f.path, f.size, f.kind == "label"))
        weight += f.size
        if len(current) >= target or weight >= BATCH_BYTES:
            batches.append(current)
            current, weight = [], 0
    if current:
        batches.append(current)
    return batches


def _hash_files(todo: list[_Found], workers: int) -> list[tuple[str, LabelCounts | None]]:
    """(sha256, label counts) of each file of `todo`, in order, in batches (one pickled list each way
    per batch, the progress bar moves per batch). Many files go to `workers` processes; a few are
    hashed here, where a pool would cost more than it saves."""
    parallel = workers > 1 and len(todo) >= PARALLEL_MIN
    batches = _batches(todo, workers if parallel else 1)
    desc = f"hash ({workers} processes)" if parallel else "hash"
    pool = None
    if parallel:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    out: list[tuple[str, LabelCounts | None]] = []
    try:
        done = pool.map(_hash_batch, batches) if pool is not None else map(_hash_batch, batches)
        for batch, results in zip(batches, progress(done, desc=desc, total=len(batches)), strict=True):
            for (path, _, _), (sha, problem, counted) in zip(batch, results, strict=True):
                if problem:  # the first problem is reported; the batches not started are dropped
                    hint = "run again once nothing is writing to the dataset"
                    raise VigilError(
                        problem, path=path, hint=hint if problem.startswith("changed") else None
                    )
                out.append((sha, counted))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return out

def hash_tree(
    root: Path,
    *,
    workers: int = 2,
    cache_path: Path | None = None,
    exclude: Collection[Path] = (),
    save: bool = True,
) -> HashResult:
    """sha256 of every file under `root`; files whose (path, size, mtime_ns) match the cache are not read.

    The cache learns the new rows unless `save` is false (then `save_hash_cache` writes them later)."""
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
    found = scan_files(root, skip)
    key = str(root.resolve())
    cache = load_cache(Path(cache_path), key) if cache_path is not None else RootCache()
    shas: dict[str, str] = {}
    todo: list[_Found] = []
    for f in found:
        sha = cached_sha(cache.rows.get(f.rel), f.size, f.mtime_ns)
        if sha is None:
            todo.append(f)
        else:
            shas[f.rel] = sha
    label_counts: dict[str, LabelCounts] = {}
    for f, (sha, counted) in zip(todo, _hash_files(todo, workers), strict=True):
        shas[f.rel] = sha
        if counted is not None:
            label_counts[f.rel] = counted
    entries = [FileEntry(f.rel, shas[f.rel], f.size, f.kind) for f in found]
    result = HashResult(entries, sorted(f.rel for f in todo), len(found) - len(todo))
    result.cache = cache
    result.label_counts = label_counts
    result.rows = {f.rel: (f.size, f.mtime_ns, shas[f.rel]) for f in found}
    if cache_path is not None:
        result.cache_path, result.cache_key = Path(cache_path), key
        if save:
            save_hash_cache(result)
    return result


def save_hash_cache(result: HashResult, summary: tuple[str, dict[str, Any]] | None = None) -> None:
    """Write what `hash_tree` learned (and, when given, the summary under its key) to its cache."""
    if result.cache_path is not None:
        save_cache(result.cache_path, result.cache_key, result.cache, result.rows, summary)


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
