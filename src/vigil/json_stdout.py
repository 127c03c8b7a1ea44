"""stdout for machine-readable lines only: whatever else is printed meanwhile goes to stderr.

`vigil predict` prints JSON lines that another program reads. Libraries print on stdout too
(ultralytics' settings banner on a first run, its logger, C-level messages), so the command runs
inside `json_only_stdout` and imports them there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def json_only_stdout() -> Iterator[TextIO]:
    """Yield the stream for the JSON lines; anything else printed meanwhile goes to stderr.

    Where stdout is a real file descriptor it is swapped at the descriptor level, so C-level prints
    are caught too; import the printing libraries inside the block.
    """
    real = sys.stdout
    try:
        fd = real.fileno()
        err = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test runner's buffer)
        with contextlib.redirect_stdout(sys.stderr):
            yield real
        return
    real.flush()
    saved = os.dup(fd)
    os.dup2(err, fd)
    try:
        with (
            os.fdopen(os.dup(saved), "w", encoding="utf-8") as out,
            contextlib.redirect_stdout(sys.stderr),
        ):
            yield out
    finally:
        real.flush()
        os.dup2(saved, fd)
        os.close(saved)
