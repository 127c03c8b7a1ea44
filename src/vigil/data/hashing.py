"""sha256 of every file of a dataset, and the per-file manifest (`files.jsonl`) that records them.

Hashing is parallel (threads: hashlib releases the GIL on large buffers) and incremental: the cache
of `vigil.data.hash_cache`, keyed on (relative path, size, mtime_ns), lets a re-run re-read only the
files that changed. The per-file manifest (one object per file, sorted by path) is the contract the
validate and split stages read:

    {"path": "images/lab/000001.jpg", "sha256": "…", "size": 1234, "kind": "image"}

The summary of a dataset is `vigil.data.summary`; the diff of two versions is `vigil.data.diff`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from vigil.atomic import write_text_atomic
from vigil.data.hash_cache import HEX, cached_sha, check_cache_target, load_cache, save_cache
from vigil.data.layout import CLASSES, IMAGE_SUFFIXES, IMAGES, LABELS, MANIFEST
from vigil.errors import VigilError
from vigil.progress import progress

KINDS: tuple[str, ...] = ("image", "label", "manifest", "classes", "other")
CHUNK = 1 << 20  # bytes per read: big enough that hashlib drops the GIL, small enough for any file


@dataclass(frozen=True)
class FileEntry:
    """One line of the per-file manifest."""

    path: str  # POSIX, relative to the dataset root
    sha256: str
    size: int
    kind: str  # one of KINDS

    def to_json(self) -> str:
        return json.dumps(
            {"path": self.path, "sha256": self.sha256, "size": self.size, "kind": self.kind},
            ensure_ascii=False,
        )


@dataclass
class HashResult:
    """Entries sorted by path, plus what this run had to read (for the incremental report)."""

    entries: list[FileEntry]
    hashed: list[str] = field(default_factory=list)  # paths re-read this run, sorted
    cached: int = 0  # entries taken from the cache


@dataclass(frozen=True)
class _Found:
    rel: str
    path: str
    size: int
    mtime_ns: int


def kind_of(rel: str) -> str:
    """Classify a relative path by the canonical layout (images/…, labels/…/*.txt, manifest, classes)."""
    if rel == MANIFEST:
        return "manifest"
    if rel == CLASSES:
        return "classes"
    top, sep, _ = rel.partition("/")
    if sep and top == IMAGES and os.path.splitext(rel)[1].lower() in IMAGE_SUFFIXES:
        return "image"
    if sep and top == LABELS and rel.endswith(".txt"):
        return "label"
    return "other"


def sha256_file(path: str | Path, size_hint: int = CHUNK) -> tuple[str, int]:
    """sha256 and byte count of one file: the only place file bytes are read (tests count calls here)."""
    digest = hashlib.sha256()
    size = 0
    read_size = max(
        1, min(CHUNK, size_hint + 1)
    )  # a small file is read in one call, EOF in the next
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(read_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_root(root: Path) -> None:
    if not root.exists():
        raise VigilError(
            "dataset folder not found",
            path=root,
            hint="pass the folder that holds images/, labels/, manifest.jsonl and classes.txt",
        )
    if not root.is_dir():
        raise VigilError("not a folder", path=root, hint="pass a dataset folder, not a file")


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
            if rel in skip:
                continue
            if not stat.S_ISREG(st.st_mode):
                raise VigilError(
                    "not a regular file", path=item.path, hint="remove it from the dataset folder"
                )
            found.append(_Found(rel, item.path, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f.rel)
    return found


def hash_tree(
    root: Path, *, workers: int = 2, cache_path: Path | None = None, exclude: Collection[Path] = ()
) -> HashResult:
    """sha256 of every file under `root`; files whose (path, size, mtime_ns) match the cache are not read."""
    root = Path(root)
    _check_root(root)
    if workers < 1:
        raise VigilError(
            f"workers must be at least 1, got {workers}",
            field="hash.workers",
            hint="set hash.workers in params.yaml (or --workers) to 1 or more",
        )
    if cache_path is not None:
        check_cache_target(
            Path(cache_path)
        )  # before any work: never overwrite a file that is not our cache
    skip = [*exclude, cache_path] if cache_path is not None else list(exclude)
    found = scan_files(root, skip)
    roots = load_cache(cache_path) if cache_path is not None else {}
    key = str(root.resolve())
    old = roots.get(key, {})
    shas: dict[str, str] = {}
    todo: list[_Found] = []
    for f in found:
        sha = cached_sha(old.get(f.rel), f.size, f.mtime_ns)
        if sha is None:
            todo.append(f)
        else:
            shas[f.rel] = sha

    def hash_one(f: _Found) -> str:
        try:
            sha, size = sha256_file(f.path, f.size)
        except OSError as exc:
            raise VigilError(f"cannot read: {exc.strerror}", path=f.path) from None
        if size != f.size:
            raise VigilError(
                f"changed while being hashed ({f.size} bytes listed, {size} read)",
                path=f.path,
                hint="run again once nothing is writing to the dataset",
            )
        return sha

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        shas_now = progress(pool.map(hash_one, todo), desc="hash", total=len(todo))
        for f, sha in zip(todo, shas_now, strict=True):
            shas[f.rel] = sha
    finally:
        pool.shutdown(
            wait=True, cancel_futures=True
        )  # on an error, report it without hashing the rest

    entries = [FileEntry(f.rel, shas[f.rel], f.size, kind_of(f.rel)) for f in found]
    if cache_path is not None:
        new = {f.rel: [f.size, f.mtime_ns, shas[f.rel]] for f in found}
        if new != old:
            roots[key] = new
            save_cache(Path(cache_path), roots)
    return HashResult(entries, sorted(f.rel for f in todo), len(found) - len(todo))


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
