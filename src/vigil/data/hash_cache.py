"""The incremental hash cache: (relative path, size, mtime_ns) → sha256, per dataset folder.

The cache is a file the user can point anywhere (`--cache`), so it carries vigil's own
marker (`"vigil": "hash-cache"`) and only a file that carries it is ever read or overwritten: a
mistyped `--cache params.yaml` is refused before anything is hashed, never replaced. A cache written
before the marker existed (exactly `{"version": 1, "roots": …}`) counts as vigil's own too.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from vigil.atomic import write_text_atomic
from vigil.errors import VigilError

MARKER = "hash-cache"
# where `vigil data hash` and the hash stage keep the cache (a work file, not a DVC path)
DEFAULT_CACHE = Path(".vigil/hash-cache.json")
CACHE_VERSION = 2
HEX = frozenset("0123456789abcdef")
_HEAD = b'{"vigil":"hash-cache"'  # how every cache this module writes begins (compact JSON, marker first)
_LEGACY_HEAD = b'{"version":1,"roots":'  # the same length: the first bytes tell the two apart
HINT = "point --cache at a new file or at a cache vigil wrote; vigil never overwrites other files"


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(len(_HEAD))


def check_cache_target(path: Path) -> None:
    """Refuse a cache path that holds anything but a vigil hash cache (a missing file is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise VigilError(
            f"cannot read the hash cache: {exc.strerror}", path=path, field="--cache", hint=HINT
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise VigilError(
            "the hash cache path exists and is not a regular file",
            path=path,
            field="--cache",
            hint=HINT,
        )
    try:
        head = _head(path)
    except OSError as exc:
        raise VigilError(
            f"cannot read the hash cache: {exc.strerror}", path=path, field="--cache", hint=HINT
        ) from None
    if head not in (_HEAD, _LEGACY_HEAD):
        raise VigilError(
            "the file exists and is not a vigil hash cache (it lacks vigil's marker)",
            path=path,
            field="--cache",
            hint=HINT,
        )


def load_cache(path: Path) -> dict[str, dict[str, list[Any]]]:
    """Read the cache ({root: {rel: [size, mtime_ns, sha256]}}); a missing or unreadable one is empty."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("roots"), dict):
        return {}
    ours = data.get("vigil") == MARKER and data.get("version") == CACHE_VERSION
    legacy = set(data) == {"version", "roots"} and data["version"] == 1
    if not (ours or legacy):
        return {}
    return {k: v for k, v in data["roots"].items() if isinstance(v, dict)}


def cached_sha(entry: Any, size: int, mtime_ns: int) -> str | None:
    """The cached sha256 when the entry is well formed and size and mtime still match, else None."""
    if (
        isinstance(entry, list)
        and len(entry) == 3
        and entry[0] == size
        and entry[1] == mtime_ns
        and isinstance(entry[2], str)
        and len(entry[2]) == 64
        and set(entry[2]) <= HEX
    ):
        return entry[2]
    return None


def save_cache(path: Path, roots: dict[str, dict[str, list[Any]]]) -> None:
    """Write the cache atomically, marker first; refuses (again, just before) a file that is not ours."""
    check_cache_target(path)
    # compact, so json's C encoder writes it (the cache is read by programs only)
    text = json.dumps(
        {"vigil": MARKER, "version": CACHE_VERSION, "roots": roots}, separators=(",", ":")
    )
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise VigilError(
            f"cannot write the hash cache: {exc.strerror}",
            path=path,
            field="--cache",
            hint="point --cache at a writable path",
        ) from None
