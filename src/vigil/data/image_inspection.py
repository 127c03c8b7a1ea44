"""Read one image the safe way: by its content, with the header's size refused before any pixel is decoded.

Used by `vigil data check` / the validate stage and by the importers, so a file is judged by one rule
wherever it enters: the bytes are read once (and hashed), the format comes from the content (never the
suffix), a header claiming a side above `max_side` (a decompression bomb or a corrupt file) is refused
before decoding, the whole image is decoded (a truncated file fails here, not in training), and an
image with a side below `min_side` is refused as unusable. A problem is returned as data
(`ImageInfo.problem`) so a checker can collect every finding; `require_image` raises it instead.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vigil.errors import VigilError

NOT_AN_IMAGE_HINT = "replace it with the real image or remove it and its manifest line"


class ImageProblem(NamedTuple):
    """Why an image is refused: a rule name (as in findings), what is wrong, and what to do."""

    rule: str
    message: str
    hint: str


@dataclass
class ImageInfo:
    """What reading one image found: its decoded size, sha256, perceptual hash, or the problem."""

    rel: str
    width: int = 0
    height: int = 0
    sha256: str = ""
    phash: bytes = b""
    problem: ImageProblem | None = None


def perceptual_hash(gray: np.ndarray) -> bytes:
    """64-bit DCT perceptual hash: robust to re-encoding, resizing and small edits."""
    import cv2

    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return np.packbits(bits).tobytes()


def inspect_image_bytes(data: bytes, *, max_side: int, min_side: int, rel: str = "") -> ImageInfo:
    """Judge an image's bytes: header size first (refuse absurd ones), then a full decode by content."""
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb guard would make an absurd header look like "not an image"; `max_side` is
    # enforced on the header here, before any pixel is decoded.
    Image.MAX_IMAGE_PIXELS = None
    info = ImageInfo(rel, sha256=hashlib.sha256(data).hexdigest())
    if not data:
        info.problem = ImageProblem("image_decode", "the file is empty", NOT_AN_IMAGE_HINT)
        return info
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width <= 0 or height <= 0 or width > max_side or height > max_side:
                info.problem = ImageProblem(
                    "image_header_size",
                    f"the header claims {width}x{height} pixels (limit {max_side})",
                    "the file is corrupt or hostile; re-export it (or raise validate.max_image_side)",
                )
                return info
            image.load()
            gray = np.asarray(image.convert("L"))
    except UnidentifiedImageError:
        info.problem = ImageProblem(
            "image_decode", "not an image (its content matches no image format)", NOT_AN_IMAGE_HINT
        )
        return info
    except Exception as exc:
        info.problem = ImageProblem(
            "image_decode",
            f"does not decode ({type(exc).__name__}: {exc})",
            "the file is truncated or corrupt; re-export it",
        )
        return info
    if width < min_side or height < min_side:
        info.problem = ImageProblem(
            "image_too_small",
            f"the image is {width}x{height} pixels (minimum side {min_side})",
            "too small to hold a detectable object; remove it (or lower validate.min_image_side)",
        )
        return info
    info.width, info.height = width, height
    info.phash = perceptual_hash(gray)
    return info


def inspect_image(path: Path, *, max_side: int, min_side: int, rel: str | None = None) -> ImageInfo:
    """Read the file at `path` and judge it (`inspect_image_bytes`); an unreadable file is a problem too."""
    label = rel if rel is not None else str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        problem = ImageProblem(
            "image_unreadable",
            f"cannot read the file ({exc.strerror or exc})",
            "check the file and its permissions",
        )
        return ImageInfo(label, problem=problem)
    return inspect_image_bytes(data, max_side=max_side, min_side=min_side, rel=label)


def require_image(
    path: Path, *, max_side: int, min_side: int, field: str | None = None
) -> ImageInfo:
    """`inspect_image`, raising the problem as one clear VigilError naming the file (for importers)."""
    info = inspect_image(path, max_side=max_side, min_side=min_side)
    if info.problem is not None:
        raise VigilError(
            f"{info.problem.message} ({info.problem.rule})",
            path=path,
            field=field,
            hint=info.problem.hint,
        )
    return info
