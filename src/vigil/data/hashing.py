"""Content manifest of a dataset: a sha256 per file, counts for review, and the diff of two versions.

Hashing is parallel (threads: hashlib releases the GIL on large buffers) and incremental: a JSON
cache keyed on (relative path, size, mtime_ns) lets a re-run re-read only the files that changed.
The per-file manifest (`files.jsonl`, one object per file, sorted by path) is the contract the
validate and split stages read:

    {"path": "images/lab/000001.jpg", "sha256": "…", "size": 1234, "kind": "image"}
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import Counter
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vigil.atomic import write_json_atomic, write_text_atomic
from vigil.data.layout import (CLASSES, IMAGE_SUFFIXES, IMAGES, LABELS, MANIFEST, STRATA,
                               parse_label_line, parse_manifest, read_classes)
from vigil.errors import VigilError
from vigil.progress import progress

KINDS: tuple[str, ...] = ("image", "label", "manifest", "classes", "other")
CACHE_VERSION = 1
CHUNK = 1 << 20  # bytes per read: big enough that hashlib drops the GIL, small enough for any file
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class FileEntry:
    """One line of the per-file manifest."""

    path: str    # POSIX, relative to the dataset root
    sha256: str
    size: int
    kind: str    # one of KINDS

    def to_json(self) -> str:
        return json.dumps({"path": self.path, "sha256": self.sha256, "size": self.size, "kind": self.kind},
                          ensure_ascii=False)


@dataclass
class HashResult:
    """Entries sorted by path, plus what this run had to read (for the incremental report)."""

    entries: list[FileEntry]
    hashed: list[str] = field(default_factory=list)  # paths re-read this run, sorted
    cached: int = 0                                   # entries taken from the cache


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
    read_size = max(1, min(CHUNK, size_hint + 1))  # a small file is read in one call, EOF in the next
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(read_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_root(root: Path) -> None:
    if not root.exists():
        raise VigilError("dataset folder not found", path=root,
                         hint="pass the folder that holds images/, labels/, manifest.jsonl and classes.txt")
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
                        raise VigilError("symlinked folder inside the dataset", path=item.path,
                                         hint="replace the link with a real folder; hashing does not follow folder links")
                    real = Path(item.path).resolve()
                    if base not in real.parents:
                        raise VigilError(f"symlink points outside the dataset folder ({real})", path=item.path,
                                         hint="keep every file inside the dataset folder")
                st = item.stat()
            except OSError as exc:
                raise VigilError(f"cannot read: {exc.strerror}", path=item.path) from None
            if rel in skip:
                continue
            if not stat.S_ISREG(st.st_mode):
                raise VigilError("not a regular file", path=item.path, hint="remove it from the dataset folder")
            found.append(_Found(rel, item.path, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f.rel)
    return found


def load_cache(path: Path) -> dict[str, dict[str, list[Any]]]:
    """Read the cache ({root: {rel: [size, mtime_ns, sha256]}}); a missing or unreadable one is empty."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("roots"), dict):
        return {}
    return {k: v for k, v in data["roots"].items() if isinstance(v, dict)}


def _cached_sha(entry: Any, found: _Found) -> str | None:
    if (isinstance(entry, list) and len(entry) == 3 and entry[0] == found.size and entry[1] == found.mtime_ns
            and isinstance(entry[2], str) and len(entry[2]) == 64 and set(entry[2]) <= _HEX):
        return entry[2]
    return None


def hash_tree(root: Path, *, workers: int = 2, cache_path: Path | None = None,
              exclude: Collection[Path] = ()) -> HashResult:
    """sha256 of every file under `root`; files whose (path, size, mtime_ns) match the cache are not read."""
    root = Path(root)
    _check_root(root)
    if workers < 1:
        raise VigilError(f"workers must be at least 1, got {workers}", field="hash.workers",
                         hint="set hash.workers in params.yaml (or --workers) to 1 or more")
    skip = [*exclude, cache_path] if cache_path is not None else list(exclude)
    found = scan_files(root, skip)
    roots = load_cache(cache_path) if cache_path is not None else {}
    key = str(root.resolve())
    old = roots.get(key, {})
    shas: dict[str, str] = {}
    todo: list[_Found] = []
    for f in found:
        sha = _cached_sha(old.get(f.rel), f)
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
            raise VigilError(f"changed while being hashed ({f.size} bytes listed, {size} read)", path=f.path,
                             hint="run again once nothing is writing to the dataset")
        return sha

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for f, sha in zip(todo, progress(pool.map(hash_one, todo), desc="hash", total=len(todo))):
            shas[f.rel] = sha
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, report it without hashing the rest

    entries = [FileEntry(f.rel, shas[f.rel], f.size, kind_of(f.rel)) for f in found]
    if cache_path is not None:
        new = {f.rel: [f.size, f.mtime_ns, shas[f.rel]] for f in found}
        if new != old:
            roots[key] = new
            try:
                # compact, so json's C encoder writes it (the cache is read by programs only)
                write_text_atomic(Path(cache_path), json.dumps({"version": CACHE_VERSION, "roots": roots},
                                                               separators=(",", ":")))
            except OSError as exc:
                raise VigilError(f"cannot write the hash cache: {exc.strerror}", path=cache_path,
                                 field="hash.cache", hint="point hash.cache at a writable path") from None
    return HashResult(entries, sorted(f.rel for f in todo), len(found) - len(todo))


def fingerprint(entries: Iterable[FileEntry]) -> str:
    """sha256 over `<sha256>  <path>` lines sorted by path (the text `sha256sum` prints for those files)."""
    lines = "".join(f"{e.sha256}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _stratum_value(value: Any) -> str:
    if value is None:
        return "<missing>"
    return value if isinstance(value, str) else json.dumps(value)


def summarize(root: Path, entries: list[FileEntry]) -> dict[str, Any]:
    """Counts for review (`metrics/dataset.json`): files and bytes per kind, labelled/unlabelled images,
    negatives, boxes and images per class, images per stratum value, and the dataset fingerprint.

    Tolerant on purpose: unreadable manifest or label lines are counted under `unreadable`, since
    naming them is the validate stage's job and it runs after this one.
    """
    files = {k: {"count": 0, "bytes": 0} for k in KINDS}
    for e in entries:
        files[e.kind]["count"] += 1
        files[e.kind]["bytes"] += e.size
    unreadable = {"classes": 0, "manifest_lines": 0, "label_files": 0, "label_lines": 0, "unknown_class_ids": 0}

    names: list[str] = []
    if (root / CLASSES).is_file():
        try:
            names = read_classes(root)
        except VigilError:
            unreadable["classes"] = 1
    boxes: Counter[str] = Counter({n: 0 for n in names})
    images: Counter[str] = Counter({n: 0 for n in names})
    negatives = 0
    for e in entries:
        if e.kind != "label":
            continue
        try:
            text = (root / e.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            unreadable["label_files"] += 1
            continue
        seen: set[str] = set()
        bad = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                cls = parse_label_line(line).cls
            except ValueError:
                bad += 1
                continue
            if 0 <= cls < len(names):
                name = names[cls]
            else:
                name = str(cls)
                if names:
                    unreadable["unknown_class_ids"] += 1
            boxes[name] += 1
            seen.add(name)
        unreadable["label_lines"] += bad
        images.update(seen)
        if not seen and not bad:
            negatives += 1
    total_boxes = sum(boxes.values())

    records: list[dict[str, Any]] = []
    if (root / MANIFEST).is_file():
        parsed = parse_manifest(root / MANIFEST)
        records = [m.record for m in parsed.lines]
        unreadable["manifest_lines"] = len(parsed.errors)
    unlabelled = sum(1 for r in records if r.get("labelled", True) is False)
    strata = {s: dict(sorted(Counter(_stratum_value(r.get(s)) for r in records).items())) for s in STRATA}

    return {
        "files": files,
        "total": {"count": len(entries), "bytes": sum(e.size for e in entries)},
        "images": {"on_disk": files["image"]["count"], "in_manifest": len(records),
                   "labelled": len(records) - unlabelled, "unlabelled": unlabelled},
        "labels": {"files": files["label"]["count"], "negatives": negatives, "boxes": total_boxes},
        "boxes_per_class": dict(sorted(boxes.items())),
        "images_per_class": dict(sorted(images.items())),
        "strata": strata,
        "unreadable": unreadable,
        "fingerprint": fingerprint(entries),
    }


def write_files_manifest(path: Path, entries: Iterable[FileEntry]) -> None:
    """Write the per-file manifest (JSON Lines, sorted by path) atomically."""
    lines = [e.to_json() + "\n" for e in sorted(entries, key=lambda e: e.path)]
    write_text_atomic(Path(path), "".join(lines))


def _entry_from(record: Any, path: Path, line: int) -> FileEntry:
    if not isinstance(record, dict):
        raise VigilError("not a JSON object", path=path, line=line)
    rel, sha, size = record.get("path"), record.get("sha256"), record.get("size")
    if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in PurePosixPath(rel).parts:
        raise VigilError(f"bad path {rel!r}", path=path, line=line, field="path",
                         hint="a POSIX path relative to the dataset folder")
    if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _HEX:
        raise VigilError(f"bad sha256 {sha!r}", path=path, line=line, field="sha256",
                         hint="64 lowercase hex digits; re-create the file with `vigil data hash`")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise VigilError(f"bad size {size!r}", path=path, line=line, field="size", hint="a byte count")
    kind = record.get("kind", kind_of(rel))
    if kind not in KINDS:
        raise VigilError(f"unknown kind {kind!r}", path=path, line=line, field="kind",
                         hint=f"one of {', '.join(KINDS)}")
    return FileEntry(rel, sha, size, kind)


def read_files_manifest(path: Path) -> list[FileEntry]:
    """Strict read of a per-file manifest written by `write_files_manifest`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VigilError("per-file manifest not found", path=path,
                         hint="pass a dataset folder or a files.jsonl written by `vigil data hash`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VigilError(f"cannot read: {exc}", path=path) from None
    entries: dict[str, FileEntry] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise VigilError(f"not valid JSON ({exc.msg} at column {exc.colno})", path=path, line=number,
                             hint="pass a files.jsonl written by `vigil data hash`") from None
        entry = _entry_from(record, path, number)
        if entry.path in entries:
            raise VigilError(f"duplicate path {entry.path!r}", path=path, line=number, field="path")
        entries[entry.path] = entry
    return sorted(entries.values(), key=lambda e: e.path)


def hash_dataset(root: Path, *, files_out: Path | None = None, metrics_out: Path | None = None,
                 workers: int = 2, cache_path: Path | None = None) -> tuple[HashResult, dict[str, Any]]:
    """The hash stage: hash `root`, write the per-file manifest and the summary (each when given)."""
    outputs = [p for p in (files_out, metrics_out) if p is not None]
    result = hash_tree(root, workers=workers, cache_path=cache_path, exclude=outputs)
    summary = summarize(Path(root), result.entries)
    if files_out is not None:
        write_files_manifest(files_out, result.entries)
    if metrics_out is not None:
        write_json_atomic(metrics_out, summary)
    return result, summary


@dataclass
class KindDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class ManifestDiff:
    """Added / removed / changed paths per kind (image, label, manifest, classes, other)."""

    kinds: dict[str, KindDiff]
    unchanged: int

    @property
    def identical(self) -> bool:
        return not any(self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: {"added": d.added, "removed": d.removed, "changed": d.changed}
                               for k, d in self.kinds.items()}
        out["unchanged"] = self.unchanged
        out["identical"] = self.identical
        return out


def diff_manifests(old: Iterable[FileEntry], new: Iterable[FileEntry]) -> ManifestDiff:
    """Compare two per-file manifests by path and sha256 (a moved file is one removal plus one addition)."""
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    kinds = {k: KindDiff() for k in KINDS}
    unchanged = 0
    for rel in sorted(before.keys() | after.keys()):
        a, b = before.get(rel), after.get(rel)
        if a is None and b is not None:
            kinds[b.kind].added.append(rel)
        elif b is None and a is not None:
            kinds[a.kind].removed.append(rel)
        elif a is not None and b is not None:
            if a.sha256 != b.sha256:
                kinds[b.kind].changed.append(rel)
            else:
                unchanged += 1
    return ManifestDiff(kinds, unchanged)


def entries_of(path: Path, *, workers: int = 2, cache_path: Path | None = None) -> list[FileEntry]:
    """A dataset folder (hashed now) or a per-file manifest (read) as manifest entries."""
    path = Path(path)
    if path.is_dir():
        return hash_tree(path, workers=workers, cache_path=cache_path).entries
    if path.is_file():
        return read_files_manifest(path)
    raise VigilError("not found", path=path, hint="pass a dataset folder or a files.jsonl written by `vigil data hash`")


_PLURAL = {"image": "images", "label": "labels", "manifest": "manifest", "classes": "classes",
           "other": "other files"}


def summary_line(diff: ManifestDiff) -> str:
    """One line: images and labels always, the other kinds only when they changed."""
    parts = [f"{_PLURAL[k]} +{len(d.added)} -{len(d.removed)} ~{len(d.changed)}"
             for k, d in diff.kinds.items() if k in ("image", "label") or d]
    return ", ".join(parts) + f"; {diff.unchanged} unchanged" + ("" if not diff.identical else " (identical)")


def format_diff(diff: ManifestDiff) -> str:
    """Readable listing: one block per kind that changed (`+` added, `-` removed, `~` changed)."""
    blocks = []
    for kind, d in diff.kinds.items():
        if not d:
            continue
        lines = [f"{_PLURAL[kind]}:"]
        lines += [f"  + {p}" for p in d.added] + [f"  - {p}" for p in d.removed] + [f"  ~ {p}" for p in d.changed]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def describe(summary: dict[str, Any], result: HashResult, seconds: float) -> str:
    """Two lines for a terminal: what the dataset holds, and what this run read (not in the metrics file,
    so that a cold and a warm run write byte-identical metrics)."""
    images, labels, total = summary["images"], summary["labels"], summary["total"]
    hashed = set(result.hashed)
    read_bytes = sum(e.size for e in result.entries if e.path in hashed)
    rate = read_bytes / 1e6 / seconds if seconds > 0 else 0.0
    return (f"{total['count']} files, {total['bytes'] / 1e6:.1f} MB: {images['on_disk']} images "
            f"({images['labelled']} labelled, {images['unlabelled']} unlabelled), {labels['files']} label files "
            f"({labels['negatives']} negatives, {labels['boxes']} boxes); fingerprint {summary['fingerprint'][:16]}\n"
            f"hashed {len(result.hashed)} files, {result.cached} from cache, in {seconds:.2f} s ({rate:.0f} MB/s read)")
