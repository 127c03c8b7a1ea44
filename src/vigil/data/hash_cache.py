"""The incremental hash cache: (relative path, size, mtime_ns) → sha256, per dataset folder.

An SQLite file (stdlib `sqlite3`), so a run that changed a few files writes a few rows, not the
whole index: at 200k files a JSON cache rewritten whole cost more than hashing the changed files.
It also keeps the dataset summary of the last run per folder, keyed by the dataset fingerprint
and the summary code, so an unchanged dataset is not re-parsed.

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
SCHEMA_VERSION = 2  # PRAGMA user_version: a file of another layout is rebuilt whole
_SCHEMA = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
    "CREATE TABLE IF NOT EXISTS roots (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE)",
    # a 32-byte BLOB is a well-formed digest by construction: no per-row text check at 200k rows
    "CREATE TABLE IF NOT EXISTS files (root INTEGER NOT NULL, rel TEXT NOT NULL,"
    " size INTEGER NOT NULL CHECK (typeof(size) = 'integer'),"
    " mtime_ns INTEGER NOT NULL CHECK (typeof(mtime_ns) = 'integer'),"
    " sha256 BLOB NOT NULL CHECK (typeof(sha256) = 'blob' AND length(sha256) = 32),"
    " PRIMARY KEY (root, rel)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS summaries (root INTEGER PRIMARY KEY, key TEXT NOT NULL,"
    " summary TEXT NOT NULL)",
)

Row = tuple[int, int, str]  # size, mtime_ns, sha256


@dataclass
class RootCache:
    """One dataset folder's part of the cache, as read: rows by relative path, and the last summary."""

    rows: dict[str, Row] = field(default_factory=dict)
    summary_key: str = ""
    summary: dict[str, Any] | None = None
    rebuild: bool = False  # the file is a JSON cache or unreadable: write it anew, whole


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


def _json_rows(path: Path, root: str) -> dict[str, Row]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["roots"][root]
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {
        rel: (e[0], e[1], e[2])
        for rel, e in entries.items()
        if isinstance(e, list) and len(e) == 3 and _valid(*e)
    }


def load_cache(path: Path, root: str) -> RootCache:
    """What the cache holds for the folder `root` (its resolved path); a missing or broken cache is empty."""
    path = Path(path)
    kind = _kind(path)
    if kind == "missing":
        return RootCache()
    if kind == "json":
        return RootCache(rows=_json_rows(path, root), rebuild=True)
    try:
        # read-only, through a URI: as_uri() percent-encodes a `?`, `#` or `%` in the path
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                return RootCache(rebuild=True)
            found_root = db.execute("SELECT id FROM roots WHERE path = ?", (root,)).fetchone()
            if found_root is None:
                return RootCache()
            root_id = found_root[0]
            rows = {
                rel: (size, mtime, sha.hex())
                for rel, size, mtime, sha in db.execute(
                    "SELECT rel, size, mtime_ns, sha256 FROM files WHERE root = ?", (root_id,)
                )
            }
            found = db.execute(
                "SELECT key, summary FROM summaries WHERE root = ?", (root_id,)
            ).fetchone()
    except sqlite3.Error:
        return RootCache(rebuild=True)
    cache = RootCache(rows=rows)
    if found is not None:
        try:
            summary = json.loads(found[1])
        except ValueError:
            summary = None
        if isinstance(summary, dict):
            cache.summary_key, cache.summary = found[0], summary
    return cache


def cached_sha(row: Row | None, size: int, mtime_ns: int) -> str | None:
    """The cached sha256 when size and mtime still match, else None."""
    if row is not None and row[0] == size and row[1] == mtime_ns:
        return row[2]
    return None


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
    path: Path,
    root: str,
    cache: RootCache,
    rows: Mapping[str, Row],
    summary: tuple[str, dict[str, Any]] | None = None,
) -> None:
    """Bring the cache of `root` from `cache` (what `load_cache` read) to `rows`: only the rows that
    changed are written. A JSON or unreadable cache is replaced whole, atomically. Refuses (again,
    just before) a file that is not ours."""
    path = Path(path)
    kind = _kind(path)
    changed = [(rel, *row) for rel, row in rows.items() if cache.rows.get(rel) != row]
    gone = list(cache.rows.keys() - rows.keys())
    new_summary = summary is not None and (summary[0], summary[1]) != (
        cache.summary_key,
        cache.summary,
    )
    try:
        if kind == "sqlite" and not cache.rebuild:
            if changed or gone or new_summary:
                with _connect(path) as db:
                    _write(db, root, changed, gone, summary)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".hash-cache-", dir=path.parent)
        os.close(fd)
        try:
            with _connect(Path(tmp)) as db:
                _write(db, root, [(rel, *row) for rel, row in rows.items()], [], summary)
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
    changed: Iterable[tuple[str, int, int, str]],
    gone: Iterable[str],
    summary: tuple[str, dict[str, Any]] | None,
) -> None:
    db.execute("INSERT OR IGNORE INTO roots (path) VALUES (?)", (root,))
    (root_id,) = db.execute("SELECT id FROM roots WHERE path = ?", (root,)).fetchone()
    db.executemany("DELETE FROM files WHERE root = ? AND rel = ?", ((root_id, rel) for rel in gone))
    db.executemany(
        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
        ((root_id, rel, size, mtime, bytes.fromhex(sha)) for rel, size, mtime, sha in changed),
    )
    if summary is not None:
        db.execute(
            "INSERT OR REPLACE INTO summaries VALUES (?, ?, ?)",
            (root_id, summary[0], json.dumps(summary[1], sort_keys=True)),
        )
