"""Progress for long work, on stderr so stdout stays machine-readable; quiet when not a terminal under CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    disable = os.environ.get("VIGIL_NO_PROGRESS") == "1"
    yield from tqdm(
        items,
        desc=desc,
        total=total,
        file=sys.stderr,
        disable=disable,
        mininterval=1.0,
        dynamic_ncols=True,
        leave=False,
    )
