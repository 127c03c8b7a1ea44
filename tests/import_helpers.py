"""Helpers for the importer tests: tiny images, reading an imported folder back, running the CLI."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from typer.testing import CliRunner

from vigil.cli import app
from vigil.data.layout import label_rel_for

Px = tuple[float, float, float, float]  # x, y, w, h in pixels (0-based edges)


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A small distinct picture (smooth random blobs) of the given size."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(
        rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def run(*args: str) -> Any:
    """`vigil …` in-process; returns the click Result (exit_code, output)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def manifest(root: Path) -> dict[str, dict[str, Any]]:
    lines = (root / "manifest.jsonl").read_text().splitlines()
    return {r["image"]: r for r in map(json.loads, lines)}


def classes(root: Path) -> list[str]:
    return (root / "classes.txt").read_text().splitlines()


def boxes_px(root: Path, image_rel: str) -> list[tuple[str, Px]]:
    """The label file of `image_rel`, back in pixels, with class names."""
    record = manifest(root)[image_rel]
    w, h = record["width"], record["height"]
    names = classes(root)
    label = root / label_rel_for(image_rel)
    out = []
    for line in label.read_text().splitlines():
        c, cx, cy, bw, bh = line.split()
        cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
        out.append((names[int(c)], (cx - bw / 2, cy - bh / 2, bw, bh)))
    return out


def assert_boxes(root: Path, image_rel: str, truth: list[tuple[str, Px]], tol: float = 0.5) -> None:
    """Every box matches the truth (same order, same class) to within `tol` pixels, and the counts agree."""
    got = boxes_px(root, image_rel)
    assert len(got) == len(truth), (image_rel, got, truth)
    for (gc, gb), (tc, tb) in zip(got, truth, strict=True):
        assert gc == tc, (image_rel, gc, tc)
        assert max(abs(a - b) for a, b in zip(gb, tb, strict=True)) <= tol, (image_rel, gb, tb)


def assert_refused(result: Any, out: Path, *fragments: str) -> None:
    """Exit 2, one error line holding every fragment (file, line/id, field), and nothing at --out."""
    assert result.exit_code == 2, result.output
    text = result.output
    assert "Traceback" not in text
    assert [line.startswith("error: ") for line in text.splitlines() if line.strip()] == [True], (
        text
    )
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert not out.exists(), sorted(out.rglob("*"))
    assert not [p for p in out.parent.glob(f".{out.name}.*")], "a temp folder was left behind"


def check_passes(root: Path) -> None:
    """`vigil data check` accepts the folder (exit 0)."""
    result = run("data", "check", root)
    assert result.exit_code == 0, result.output


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims `width` x `height` (8-bit RGB), then a few bytes of pixels: a bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` (links not followed) with its size and mtime: what a run may not change."""
    out = {}
    for base, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            st = os.lstat(os.path.join(base, name))
            out[os.path.relpath(os.path.join(base, name), root)] = (st.st_size, st.st_mtime_ns)
    return out
