"""Check an output file path before any work: one clear error instead of a traceback at the end.

A command that computes for minutes and then cannot write (`--out .`, a path under /proc, a file
where a folder should be) loses the work and leaves a traceback. Nothing is created by the check:
it probes the nearest existing folder with a temporary file and removes it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vigil.errors import VigilError


def check_output_file(
    path: Path, field: str, *, suffix: str | None = None, inputs: tuple[Path, ...] = ()
) -> Path:
    """`path` if a file can be written there (replacing a regular file); else a VigilError naming `field`."""
    path = Path(path)
    example = f"e.g. out/result{suffix or ''}"
    if str(path) in ("", ".", "..") or path.name in ("", ".", "..") or path.is_dir():
        raise VigilError(
            "is a folder, not a file", path=path, field=field, hint=f"give a file path, {example}"
        )
    if path.exists() and not path.is_file():
        raise VigilError(
            "exists and is not a regular file",
            path=path,
            field=field,
            hint=f"give another path, {example}",
        )
    if suffix is not None and path.suffix.lower() != suffix:
        raise VigilError(
            f"the output must be a {suffix} file", path=path, field=field, hint=example
        )
    for source in inputs:
        if path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise VigilError(
                "is one of the inputs; it would be overwritten",
                path=path,
                field=field,
                hint=f"give another path, {example}",
            )
    ancestor = path.parent if str(path.parent) else Path(".")
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise VigilError(
            f"cannot create it: {ancestor} is a file, not a folder", path=path, field=field
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".vigil-write-probe.", suffix=".tmp", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise VigilError(
            f"cannot write in {ancestor}: {exc.strerror or exc}",
            path=path,
            field=field,
            hint="choose a writable folder",
        ) from None
    return path
