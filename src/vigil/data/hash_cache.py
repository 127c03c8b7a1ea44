"""The incremental hash cache: for each folder of a dataset, its files' (name, size, mtime_ns, sha256).

An SQLite file (stdlib `sqlite3`) with one row per folder of the dataset: its files' records as a
JSON list, `[name, size, mtime_ns, sha256]`, plus for a label file or the manifest what the summary
counts of it (`vigil.data.label_counts`). A run that changed a few files rewrites a few folders'
rows, not the whole index; a worker process reads and compares a folder's records on its own, so the
main process never touches a file's row. Each dataset root records the signature of the code that
made the counts (`hashing.code_signature`): with other code the shas still hold, the counts are redone.

The cache is a file the user can point anywhere (`--cache`), so it carries vigil's own marker
(SQLite's `application_id` header field = "VGHC"), and only a file that carries it is ever read or
overwritten: a mistyped `--cache params.yaml` is refused before anything is hashed, never replaced.
The JSON caches of earlier versions (`{"vigil":"hash-cache",…` or exactly `{"version":1,"roots":…`)
count as vigil's own: they are read once and replaced by the SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import VigilError

# where `vigil data hash` and the hash stage keep the cache (a work file, not a DVC path)
DEFAULT_CACHE = Path(".vigil/hash-cache.sqlite")
APPLICATION_ID = 0x56474843  # "VGHC": SQLite's header field for the owning application
HEX = frozenset("0123456789abcdef")
_SQLITE_HEAD = b"SQLite format 3\x00"
_JSON_HEADS = (b'{"vigil":"hash-cache"', b'{"version":1,"roots":')  # the JSON caches before SQLite
HINT = "point --cache at a new file or at a cache vigil wrote; vigil never overwrites other files"
SCHEMA_VERSION = 3  # PRAGMA user_version: a file of another layout is rebuilt whole
_SCHEMA = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
    "CREATE TABLE IF NOT EXISTS roots (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
    " code TEXT NOT NULL DEFAULT '')",
    # rel: the folder relative to the root, "" or ending in "/"; records: a JSON list
    "CREATE TABLE IF NOT EXISTS folders (root INTEGER NOT NULL, rel TEXT NOT NULL,"
    " records TEXT NOT NULL, PRIMARY KEY (root, rel)) WITHOUT ROWID",
)


@dataclass
class RootCache:
    """One dataset root's part of the cache, as read: each folder's records (JSON text)."""

    folders: dict[str, str] = field(default_factory=dict)
    code: str = ""  # the code signature its counts were made with
    # per folder, the records of an older cache (no counts: those are redone, the shas kept)
    legacy: dict[str, list[list[Any]]] | None = None
    rebuild: bool = False  # the file is of an older layout or unreadable: write it anew, whole


def _error(message: str, path: Path) -> VigilError:
    return VigilError(message, path=path, field="--cache", hint=HINT)


def _kind(path: Path) -> str:
    """'missing', 'sqlite' (ours), 'json' (ours, older) — or a refusal naming the file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise _error(f"cannot read the hash cache: {exc.strerror}", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise _error("the hash cache path exists and is not a regular file", path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(72)
    except OSError as exc:
        raise _error(f"cannot read the hash cache: {exc.strerror}", path) from None
    if head.startswith(_SQLITE_HEAD) and len(head) >= 72:
        if int.from_bytes(head[68:72], "big") == APPLICATION_ID:
            return "sqlite"
    elif any(head.startswith(h) for h in _JSON_HEADS):
        return "json"
    raise _error("the file exists and is not a vigil hash cache (it lacks vigil's marker)", path)


def check_cache_target(path: Path) -> None:
    """Refuse a cache path that holds anything but a vigil hash cache (a missing file is fine)."""
    _kind(Path(path))


def _valid(size: Any, mtime_ns: Any, sha: Any) -> bool:
    return (
        isinstance(size, int)
        and isinstance(mtime_ns, int)
        and isinstance(sha, str)
        and len(sha) == 64
        and set(sha) <= HEX
    )


def _by_folder(rows: Iterable[tuple[str, Any, Any, Any]]) -> dict[str, list[list[Any]]]:
    """Per-file rows (rel, size, mtime_ns, sha256) of an older cache as per-folder records."""
    out: dict[str, list[list[Any]]] = {}
    for rel, size, mtime_ns, sha in rows:
        if isinstance(rel, str) and _valid(size, mtime_ns, sha):
            folder, _, name = rel.rpartition("/")
            out.setdefault(f"{folder}/" if folder else "", []).append([name, size, mtime_ns, sha])
    return out


def _json_rows(path: Path, root: str) -> dict[str, list[list[Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["roots"][root]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return _by_folder(
        (rel, *e) for rel, e in entries.items() if isinstance(e, list) and len(e) == 3
    )


def _v2_rows(db: sqlite3.Connection, root: str) -> dict[str, list[list[Any]]]:
    """The per-file rows of a version-2 cache (sha256 as a 32-byte BLOB)."""
    found = db.execute("SELECT id FROM roots WHERE path = ?", (root,)).fetchone()
    if found is None:
        return {}
    rows = db.execute("SELECT rel, size, mtime_ns, sha256 FROM files WHERE root = ?", (found[0],))
    return _by_folder(
        (rel, size, mtime, sha.hex() if isinstance(sha, bytes) else None)
        for rel, size, mtime, sha in rows
    )


def load_cache(path: Path, root: str) -> RootCache:
    """What the cache holds for the dataset `root` (its resolved path); a missing or broken cache is
    empty, an older one gives its shas (`legacy`) and is rewritten whole."""
    path = Path(path)
    kind = _kind(path)
    if kind == "missing":
        return RootCache()
    if kind == "json":
        return RootCache(legacy=_json_rows(path, root), rebuild=True)
    try:
        # read-only, through a URI: as_uri() percent-encodes a `?`, `#` or `%` in the path
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 2:
                return RootCache(legacy=_v2_rows(db, root), rebuild=True)
            if version != SCHEMA_VERSION:
                return RootCache(rebuild=True)
            found = db.execute("SELECT id, code FROM roots WHERE path = ?", (root,)).fetchone()
            if found is None:
                return RootCache()
            folders = dict(
                db.execute("SELECT rel, records FROM folders WHERE root = ?", (found[0],)).fetchall()
            )
    except sqlite3.Error:
        return RootCache(rebuild=True)
    return RootCache(folders=folders, code=found[1])


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path, timeout=60)
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        with db:  # one transaction
            yield db
    finally:
        db.close()


def save_cache(
    path: Path, root: str, cache: RootCache, folders: Mapping[str, str], code: str
) -> None:
    """Bring the cache of `root` from `cache` (what `load_cache` read) to `folders`: only the folders
    that changed are written. An older or unreadable cache is replaced whole, atomically. Refuses
    (again, just before) a file that is not ours."""
    path = Path(path)
    kind = _kind(path)
    changed = [(rel, text) for rel, text in folders.items() if cache.folders.get(rel) != text]
    gone = list(cache.folders.keys() - folders.keys())
    try:
        if kind == "sqlite" and not cache.rebuild:
            if changed or gone or code != cache.code:
                with _connect(path) as db:
                    _write(db, root, changed, gone, code)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".hash-cache-", dir=path.parent)
        os.close(fd)
        try:
            with _connect(Path(tmp)) as db:
                _write(db, root, list(folders.items()), [], code)
            _kind(path)  # still ours (or gone) just before the replace
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except (OSError, sqlite3.Error) as exc:
        raise VigilError(
            f"cannot write the hash cache: {exc}",
            path=path,
            field="--cache",
            hint="point --cache at a writable path",
        ) from None


def _write(
    db: sqlite3.Connection,
    root: str,
    changed: Iterable[tuple[str, str]],
    gone: Iterable[str],
    code: str,
) -> None:
    db.execute("INSERT OR IGNORE INTO roots (path) VALUES (?)", (root,))
    db.execute("UPDATE roots SET code = ? WHERE path = ?", (code, root))
    (root_id,) = db.execute("SELECT id FROM roots WHERE path = ?", (root,)).fetchone()
    db.executemany("DELETE FROM folders WHERE root = ? AND rel = ?", ((root_id, rel) for rel in gone))
    db.executemany(
        "INSERT OR REPLACE INTO folders VALUES (?, ?, ?)",
        ((root_id, rel, text) for rel, text in changed),
    )
