"""`train.cache: auto`: the image cache chosen from the dataset's decoded size and this machine.

ultralytics' `cache=ram` holds every training and val image decoded and resized (long side = imgsz)
in memory: about 23 GB at 100k images of 320×240 on imgsz 320, more than a 24 GB machine can spare.
`auto` estimates that size from the image headers (no decode) and picks, in order:

- `ram`  when the estimate, with a safety margin, fits in the memory available now;
- `disk` when it fits on the file system of the run folder (ultralytics writes one .npy per image);
- `none` otherwise (every image decoded at every epoch: slow, but it runs).

The choice and its numbers are printed and kept in the train metrics. It does not change what the
model learns from, only where the decoded pixels wait between epochs.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

CACHES: tuple[str, ...] = ("auto", "ram", "disk", "none")
SAMPLE = 256  # headers read to estimate the mean decoded size (evenly spaced through the list)
MARGIN = 1.5  # required = estimate × MARGIN (augmentation buffers, the val loader, fragmentation)


@dataclass(frozen=True)
class CacheChoice:
    cache: str  # ram | disk | none: what ultralytics is given
    asked: str  # the params value (auto, or a fixed choice)
    images: int
    estimated_gb: float  # decoded, resized pixels of every image
    available_ram_gb: float | None
    free_disk_gb: float | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        return f"train: cache {self.asked} → {self.cache}: {self.reason}"


def resized_bytes(width: int, height: int, imgsz: int) -> int:
    """Bytes of one image as ultralytics caches it: long side scaled to imgsz, 3 channels of uint8."""
    scale = imgsz / max(width, height, 1)
    return max(1, round(width * scale)) * max(1, round(height * scale)) * 3


def estimate_bytes(root: Path, images: Sequence[str], imgsz: int) -> int:
    """Decoded size of `images` (paths under `root`) from up to SAMPLE headers, extrapolated."""
    from PIL import Image

    if not images:
        return 0
    step = max(1, len(images) // SAMPLE)
    sample = list(images[::step])[:SAMPLE]
    total = 0
    for rel in sample:
        try:
            with Image.open(root / rel) as image:  # reads the header only
                total += resized_bytes(image.width, image.height, imgsz)
        except OSError:
            total += imgsz * imgsz * 3  # unreadable here: validate names it; count it at full size
    return round(total * len(images) / len(sample))


def _available_ram() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def choose_cache(
    asked: str,
    root: Path,
    images: Sequence[str],
    imgsz: int,
    run_dir: Path,
    *,
    available_ram: int | None = None,
    free_disk: int | None = None,
) -> CacheChoice:
    """The cache to give ultralytics for `images`; a fixed `asked` is kept, `auto` is decided here."""
    gb = float(1 << 30)
    need = estimate_bytes(root, images, imgsz)
    ram = _available_ram() if available_ram is None else available_ram
    if free_disk is None:
        probe = run_dir if run_dir.exists() else next(p for p in run_dir.parents if p.exists())
        free_disk = shutil.disk_usage(probe).free
    numbers = {
        "images": len(images),
        "estimated_gb": round(need / gb, 3),
        "available_ram_gb": None if ram is None else round(ram / gb, 2),
        "free_disk_gb": round(free_disk / gb, 2),
    }
    required = need * MARGIN
    if asked != "auto":
        return CacheChoice(asked, asked, reason="set in params", **numbers)  # type: ignore[arg-type]
    if ram is not None and required <= ram:
        cache, why = "ram", f"{required / gb:.2f} GB needed, {ram / gb:.1f} GB RAM available"
    elif required <= free_disk:
        cache = "disk"
        why = (
            f"{required / gb:.2f} GB needed, more than the "
            f"{'unknown' if ram is None else f'{ram / gb:.1f} GB'} RAM available; "
            f"{free_disk / gb:.1f} GB free on disk"
        )
    else:
        cache, why = "none", f"{required / gb:.2f} GB needed fits neither RAM nor disk"
    return CacheChoice(cache, "auto", reason=why, **numbers)  # type: ignore[arg-type]
