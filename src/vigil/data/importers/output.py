"""Where an import or a merge may write, and what `--force` may replace.

- `--out` is resolved first: a symlinked `--out` writes where the link points (the link stays), and
  the current folder, a folder holding it, or the file-system root are refused.
- `--out` never lies inside an input, and never holds one: replacing it would delete that input.
- A non-empty `--out` is replaced only with `--force`, and only when vigil wrote it: it holds the
  marker `.vigil-output.json` that every import and merge writes (or, written before that marker,
  a `PROVENANCE.json` from `vigil data import`, `merge` or `build-sample`).
- One writer per output (`vigil.atomic.output_lock`, held while the output is written): a second
  import into the same `--out` is refused while the first writes; the checks run again under the lock.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.atomic import output_lock
from vigil.errors import VigilError

MARKER = ".vigil-output.json"
PROVENANCE = "PROVENANCE.json"
_NEW_FOLDER_HINT = "choose a new folder"


def marker(command: str) -> dict[str, Any]:
    """The content of the marker: what wrote the folder (read back by `written_by_vigil`)."""
    return {"vigil": "output", "written_by": f"vigil {command}", "version": __version__}


def _small_json(path: Path, limit: int) -> Any:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def written_by_vigil(folder: Path) -> bool:
    """Whether `folder` carries vigil's output marker (or a provenance file only vigil writes)."""
    mark = _small_json(folder / MARKER, 1 << 16)
    if isinstance(mark, dict) and mark.get("vigil") == "output":
        return True
    prov = _small_json(folder / PROVENANCE, 64 << 20)
    if not isinstance(prov, dict):
        return False
    importer, builder = prov.get("importer"), prov.get("builder")
    return (
        (isinstance(importer, str) and importer.startswith("vigil data import"))
        or (isinstance(builder, str) and builder.startswith("vigil data build-sample"))
        or (isinstance(prov.get("merged"), list) and "seed" in prov)
    )


def resolve_out(out: Path) -> Path:
    """`--out` as the real folder it names (symlinks followed), refusing the current folder and the root."""
    try:
        real = Path(out).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise VigilError(
            f"cannot be resolved ({exc})",
            path=out,
            field="--out",
            hint="remove the broken link, or " + _NEW_FOLDER_HINT,
        ) from None
    if real.parent == real:
        raise VigilError(
            "--out is the file-system root", path=out, field="--out", hint=_NEW_FOLDER_HINT
        )
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        cwd = None
    if cwd is not None and (real == cwd or real in cwd.parents):
        raise VigilError(
            "--out is the current folder or holds it; it would be replaced whole",
            path=out,
            field="--out",
            hint=_NEW_FOLDER_HINT + ", e.g. --out imported",
        )
    return real


def check_out(out: Path, force: bool, inputs: list[Path]) -> None:
    """Refuse an `--out` (resolved) that lies in or holds an input, or that --force may not replace."""
    for src in inputs:
        try:
            src_r = Path(src).resolve()
        except (OSError, RuntimeError):
            continue  # the reader names a broken input itself
        if out == src_r or src_r in out.parents:
            raise VigilError(
                f"--out {out} lies inside the source {src}",
                field="--out",
                hint="write the canonical dataset somewhere outside the source folder",
            )
        if out in src_r.parents:
            raise VigilError(
                f"--out {out} holds the input {src}: replacing it would delete that input",
                field="--out",
                hint=_NEW_FOLDER_HINT + " that holds none of the inputs",
            )
    if os.path.lexists(out) and not out.is_dir():
        raise VigilError("--out exists and is not a folder", path=out, field="--out")
    try:
        empty = not out.is_dir() or not any(out.iterdir())
    except OSError as exc:
        raise VigilError(f"cannot read --out ({exc.strerror})", path=out, field="--out") from None
    if empty:
        return
    if not force:
        raise VigilError(
            "--out is not empty",
            path=out,
            field="--out",
            hint=_NEW_FOLDER_HINT + ", or pass --force to replace a folder vigil wrote",
        )
    if not written_by_vigil(out):
        raise VigilError(
            f"--force replaces only a folder vigil wrote, and this one has no {MARKER}",
            path=out,
            field="--out",
            hint=_NEW_FOLDER_HINT + "; if nothing in it is needed, delete it yourself first",
        )


def prepare_out(out: Path, force: bool, inputs: list[Path]) -> Path:
    """The resolved `--out`, checked; nothing is created (the lock is taken only to write)."""
    real = resolve_out(out)
    check_out(real, force, inputs)
    return real


@contextmanager
def writing(out: Path, force: bool, inputs: list[Path]) -> Iterator[None]:
    """Hold `out`'s lock while it is written; the checks run again under it (another writer may have
    finished since), so a second import or merge into the same folder is refused or runs after, never
    interleaved. Taken only once the source has been read and checked whole, so a refused source
    leaves nothing, not even a lock file, beside `--out`."""
    with output_lock(out, field="--out"):
        check_out(out, force, inputs)
        yield


@contextmanager
def file_errors() -> Iterator[None]:
    """A file-system error (a source that cannot be read, a full disk) as one error naming the file."""
    try:
        yield
    except OSError as exc:
        raise VigilError(
            f"cannot read or write ({exc.strerror or exc})",
            path=exc.filename,
            hint="check the file's permissions and the free space",
        ) from None
