"""The unlabelled pool of a dataset: its `labelled: false` manifest lines, and a list naming them."""

from __future__ import annotations

from pathlib import Path

from vigil.data.layout import MANIFEST, read_manifest
from vigil.detection.split_lists import read_split_list
from vigil.errors import VigilError


def pool_sizes(data: Path) -> dict[str, tuple[int, int]]:
    """Each unlabelled image of the dataset at `data` → its (width, height), in manifest order."""
    out: dict[str, tuple[int, int]] = {}
    for n, record in enumerate(read_manifest(Path(data)), start=1):
        if record.get("labelled", True) is not False:
            continue
        width, height = record.get("width"), record.get("height")
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise VigilError(
                "an unlabelled image without its width and height",
                path=Path(data) / MANIFEST,
                line=n,
                field="width",
                hint="run `vigil data check` on the dataset",
            )
        out[str(record["image"])] = (width, height)
    return out


def listed_pool(pool_list: Path, pool: dict[str, tuple[int, int]]) -> list[str]:
    """The images a pool list names (the split stage's pool.txt); each must be unlabelled here."""
    images = read_split_list(pool_list)
    for image in images:
        if image not in pool:
            raise VigilError(
                f"{image!r} is not an unlabelled image of the dataset",
                path=pool_list,
                hint="rank the pool of the dataset the list was split from (--data, --pool)",
            )
    if not images:
        raise VigilError("the pool list is empty", path=pool_list, hint="nothing to rank")
    return images
