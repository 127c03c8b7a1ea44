"""Atomic outputs: a stage either leaves a complete file or folder, or nothing new at all.

Every temp is a folder beside the output, `.NAME.vigil-HOST-PID.XXXX.tmp/` (HOST: a short hash of
the host name), that carries vigil's marker file (`.vigil-temp`: vigil, pid, host). The next run
sweeps only such folders, and only when the process that made them is gone (an unreaped zombie
counts as gone), so a user's own `.NAME.x.tmp` file or folder is never touched and a writer still
at work keeps its temp. A writer
killed between making the folder and writing its marker leaves an empty folder: its name alone
(this host, a dead pid, nothing inside but a partial marker) lets the next run sweep it too.
`output_lock` gives one writer per output: a second one is refused.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from vigil.errors import VigilError

TEMP_MARKER = ".vigil-temp"
LOCK_SUFFIX = ".vigil-lock"
_NEW, _OLD = "new", "old"  # inside a folder temp: the output being built, and the one it replaces


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    """Whether `pid` still runs. A killed writer that nobody reaped (an orphan under a PID 1 that does
    not reap, as in many containers) stays a zombie that still answers `kill(pid, 0)`: it is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists, under another user
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # no /proc (not Linux), or it has just gone: kill(pid, 0) decided
    fields = stat.rpartition(")")[2].split()  # the name in (...) may hold spaces and parentheses
    return bool(fields) and fields[0] in {"Z", "X"}


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


_TEMP_NAME = re.compile(r"\.vigil-([0-9a-f]{8})-([0-9]+)\.[^/]*\.tmp\Z")


def _unmarked_but_ours(folder: Path) -> bool:
    """A temp whose writer died before its marker was complete: vigil's name (this host, a dead pid)
    and nothing inside but, at most, the partial marker file."""
    match = _TEMP_NAME.search(folder.name)
    if match is None or match.group(1) != _host_tag() or _alive(int(match.group(2))):
        return False
    try:
        return {p.name for p in folder.iterdir()} <= {TEMP_MARKER}
    except OSError:
        return False


def _abandoned(folder: Path) -> bool:
    """A temp folder vigil made (its marker says so) whose process, on this host, has ended."""
    marker = folder / TEMP_MARKER
    try:
        if folder.is_symlink() or not folder.is_dir() or marker.is_symlink():
            return False
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _unmarked_but_ours(folder) if folder.is_dir() and not folder.is_symlink() else False
    if (
        not isinstance(data, dict)
        or data.get("vigil") != "temp"
        or not isinstance(data.get("pid"), int)
    ):
        return False
    return data.get("host") == socket.gethostname() and not _alive(data["pid"])


def _clear_stale(path: Path) -> None:
    """Sweep the marked temps of killed earlier runs beside `path`; never `path` itself, nothing unmarked.

    A run killed between moving the old output aside and moving the new one in left the old one in
    its temp: it is put back first.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if not _abandoned(stale):
            continue
        if (stale / _OLD).exists() and not os.path.lexists(path):
            os.replace(stale / _OLD, path)
        shutil.rmtree(stale, ignore_errors=True)


def _new_temp(path: Path) -> Path:
    """A marked temp folder beside `path` (same file system, so renames out of it are atomic)."""
    prefix = f".{path.name}.vigil-{_host_tag()}-{os.getpid()}."
    box = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
    marker = {"vigil": "temp", "pid": os.getpid(), "host": socket.gethostname(), "for": path.name}
    (box / TEMP_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return box


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write into a marked temp beside ``path`` and rename into place (ordinary file mode, not 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    box = _new_temp(path)
    try:
        tmp = box / path.name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(box, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    """JSON with sorted keys and a trailing newline, so reruns are byte-identical."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path`` whole.

    A symlink at ``path`` is replaced by the new folder (the link itself goes, its target stays).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    box = _new_temp(path)
    try:
        new = box / _NEW
        new.mkdir()
        os.chmod(new, 0o777 & ~_umask())
        yield new
        moved = os.path.lexists(path)
        if moved:
            os.replace(path, box / _OLD)
        try:
            os.replace(new, path)
        except BaseException:
            if moved:
                os.replace(box / _OLD, path)
            raise
    finally:
        shutil.rmtree(box, ignore_errors=True)


def lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}{LOCK_SUFFIX}"


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (outermost first), so a failed run can remove them."""
    missing: list[Path] = []
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir()
    return list(reversed(missing))


def _open_lock(lock: Path) -> int:
    """Open and flock the lock file, refusing when another process holds it (retries a swept inode)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(20):
        fd = os.open(lock, flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            os.close(fd)
            raise VigilError(
                f"another vigil process is writing this output ({holder or 'lock held'})",
                path=lock.parent / lock.name.removeprefix(".").removesuffix(LOCK_SUFFIX),
                hint="wait until it finishes, or write to another folder",
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder before us removed the file after we opened it: take the new one
    raise VigilError("could not take the output lock", path=lock, hint="try again")


@contextmanager
def output_lock(path: Path, field: str | None = None) -> Iterator[None]:
    """Hold the one lock of output ``path`` (`.NAME.vigil-lock` beside it) while it is checked and written.

    A second writer of the same output is refused with a message, never queued behind the first. The
    lock file carries vigil's marker and is removed at the end, as are the parent folders made for
    ``path`` when the run fails. A file at the lock path that vigil did not write is refused, not reused.
    """
    path = Path(path)
    lock = lock_path(path)
    try:
        made = _make_parents(path.parent)
    except OSError as exc:
        raise VigilError(
            f"cannot create the folder ({exc.strerror})",
            path=exc.filename or path.parent,
            field=field,
            hint="choose a writable location",
        ) from None
    fd = -1
    try:
        try:
            fd = _open_lock(lock)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise VigilError(
                    "the lock path is a symlink",
                    path=lock,
                    field=field,
                    hint="remove it; vigil writes its own lock file there",
                ) from None
            raise VigilError(
                f"cannot write here ({exc.strerror})",
                path=path,
                field=field,
                hint="choose a writable location",
            ) from None
        content = os.pread(fd, 4096, 0)
        if content and not content.startswith(b'{"vigil": "lock"'):
            os.close(fd)
            fd = -1
            raise VigilError(
                "this file is in the way of vigil's lock file and was not written by vigil",
                path=lock,
                field=field,
                hint="move it away, or write to another folder",
            )
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps(
                {"vigil": "lock", "pid": os.getpid(), "host": socket.gethostname()}
            ).encode(),
            0,
        )
        yield
    except BaseException:
        if fd >= 0:
            _release(lock, fd)
            fd = -1
        for folder in reversed(made):
            with suppress(OSError):
                folder.rmdir()
        raise
    finally:
        if fd >= 0:
            _release(lock, fd)


def _release(lock: Path, fd: int) -> None:
    with suppress(OSError):
        os.unlink(
            lock
        )  # while still holding it: a waiter that opened it sees a stale inode and retries
    os.close(fd)
