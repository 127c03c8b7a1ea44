"""The one image rule shared by `check` and the importers: header size before decoding, decode by content."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import write_image
from vigil.data.image_inspection import inspect_image, inspect_image_bytes, require_image
from vigil.errors import VigilError


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims `width`x`height` but whose pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4)
        + idat
        + struct.pack(">I", zlib.crc32(idat))
    )


def jpeg(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 128, dtype=np.uint8))
    assert ok
    return data.tobytes()


def test_a_good_image_gives_size_hash_and_phash(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", seed=1)
    info = inspect_image(tmp_path / "a.png", max_side=8192, min_side=8)
    assert info.problem is None and (info.width, info.height) == (64, 48)
    assert len(info.sha256) == 64 and len(info.phash) == 8


def test_format_comes_from_the_content_not_the_suffix(tmp_path: Path) -> None:
    (tmp_path / "really_a_jpeg.png").write_bytes(jpeg(40, 30))
    info = inspect_image(tmp_path / "really_a_jpeg.png", max_side=8192, min_side=8)
    assert info.problem is None and (info.width, info.height) == (40, 30)


@pytest.mark.parametrize(
    "data,rule",
    [
        (b"", "image_decode"),
        (b"GIF89a not really", "image_decode"),
        (b"plain text", "image_decode"),
        (png_header(200_000, 200_000), "image_header_size"),
        (png_header(9000, 10), "image_header_size"),
        (png_header(64, 64)[:60], "image_decode"),  # truncated after 60 bytes
        (jpeg(64, 64)[:300], "image_decode"),  # truncated JPEG
        (jpeg(1, 1), "image_too_small"),
    ],
)
def test_bad_bytes_are_refused_with_a_rule(data: bytes, rule: str) -> None:
    info = inspect_image_bytes(data, max_side=8192, min_side=8)
    assert info.problem is not None and info.problem.rule == rule, info.problem


def test_require_image_raises_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(100_000, 100_000))
    with pytest.raises(VigilError) as caught:
        require_image(path, max_side=8192, min_side=8, field="file_name")
    text = caught.value.render()
    assert str(path) in text and "100000x100000" in text and "[file_name]" in text
    with pytest.raises(VigilError, match="cannot read"):
        require_image(tmp_path / "absent.png", max_side=8192, min_side=8)
