"""`vigil data check` at scale: the fast paths give the same findings as the careful ones.

- images are decoded in worker processes past `PARALLEL_MIN`: same findings as in one process;
- the near-duplicate search switches to multi-index hashing past `MULTIHASH_MIN`: same pairs as the
  exhaustive search, for every radius;
- pairs within a driver or vehicle are dropped before any finding is built (video frames);
- one walk of images/ and labels/ answers existence and containment, unless a symlink is met.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import make_dataset
from vigil.data import checks, leakage
from vigil.data.checks import check_dataset
from vigil.data.findings import Finding
from vigil.data.leakage import LeakCandidate, find_leaks, near_duplicate_arrays
from vigil.params import ValidateParams, load_section

REPO = Path(__file__).resolve().parents[1]
PARAMS = replace(
    load_section(REPO / "params.yaml", "validate", ValidateParams),
    min_per_class=1,
    min_per_stratum=1,
)


def findings(root: Path, params: ValidateParams = PARAMS) -> list[Finding]:
    return check_dataset(root, params).findings


def brute_pairs(codes: np.ndarray, max_bits: int) -> set[tuple[int, int, int]]:
    bits = np.unpackbits(codes, axis=1).astype(np.int64)
    distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    i, j = np.nonzero(np.triu(distance <= max_bits, k=1))
    return {(int(a), int(b), int(distance[a, b])) for a, b in zip(i, j, strict=True)}


@pytest.mark.parametrize("max_bits", [0, 1, 4, 7, 15, 16])
def test_multi_index_search_finds_exactly_the_exhaustive_pairs(
    max_bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(max_bits)
    base = rng.integers(0, 256, (40, 8), dtype=np.uint8)
    codes = np.repeat(base, 10, axis=0)
    bits = np.unpackbits(codes, axis=1)
    for row in range(len(codes)):  # 0..8 random flips per code: pairs near and past the radius
        flips = rng.choice(64, size=int(rng.integers(0, 9)), replace=False)
        bits[row, flips] ^= 1
    codes = np.packbits(bits, axis=1)
    hashes = [row.tobytes() for row in codes]
    monkeypatch.setattr(leakage, "MULTIHASH_MIN", 1)
    i, j, d = near_duplicate_arrays(hashes, max_bits)
    assert type(leakage._index(len(hashes), max_bits)).__name__ == (
        "IndexBinaryMultiHash" if max_bits < 16 else "IndexBinaryFlat"
    )
    found = set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))
    assert found == brute_pairs(codes, max_bits)
    assert len(found) > 0
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == sorted(
        zip(i.tolist(), j.tolist(), strict=True)
    )


def test_near_duplicates_within_a_group_give_no_finding_across_groups_do() -> None:
    same = b"\x0f" * 8
    close = b"\x0f" * 7 + b"\x0e"  # 1 bit apart
    images = [
        LeakCandidate("images/a.jpg", 1, ("d0", "v0"), "a" * 64, same),
        LeakCandidate("images/b.jpg", 2, ("d0", "v0"), "b" * 64, close),  # same group: dropped
        LeakCandidate("images/c.jpg", 3, ("d1", "v0"), "c" * 64, close),  # shares the vehicle
        LeakCandidate("images/d.jpg", 4, ("d2", "v2"), "d" * 64, close),  # shares nothing: warns
        LeakCandidate(
            "images/e.jpg", 5, ("d3", "v3"), "d" * 64, same
        ),  # same bytes as d: critical, not near
    ]
    out = find_leaks(images, 4)
    near = sorted(
        (f.path, f.message.split(" (")[0]) for f in out if f.rule == "leak_near_duplicate"
    )
    assert near == [
        ("images/d.jpg", "near-duplicate of images/a.jpg"),
        ("images/d.jpg", "near-duplicate of images/b.jpg"),
        ("images/d.jpg", "near-duplicate of images/c.jpg"),
        ("images/e.jpg", "near-duplicate of images/a.jpg"),
        ("images/e.jpg", "near-duplicate of images/b.jpg"),
        ("images/e.jpg", "near-duplicate of images/c.jpg"),
    ]
    assert [f.path for f in out if f.rule == "leak_identical"] == ["images/e.jpg"]


def _flawed(root: Path) -> Path:
    make_dataset(root, n=16)
    (root / "images/003.png").write_bytes(b"not a picture")
    (root / "labels/005.txt").write_text("7 0.5 0.5 0.2 0.2\nbad line\n")
    (root / "labels/999.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # orphan
    os.remove(root / "labels/006.txt")
    return root


def test_worker_processes_give_the_same_findings_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _flawed(tmp_path / "d")
    one = findings(root, replace(PARAMS, workers=1))
    monkeypatch.setattr(checks, "PARALLEL_MIN", 2)
    used: list[int] = []
    real = checks.ProcessPoolExecutor

    def counting(*args: object, **kwargs: object) -> object:
        used.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checks, "ProcessPoolExecutor", counting)
    two = findings(root, replace(PARAMS, workers=2))
    assert used == [1]
    assert [f.render() for f in two] == [f.render() for f in one]
    rules = {f.rule for f in one}
    assert {"image_decode", "label_missing", "label_orphan", "label_syntax"} <= rules


def test_one_symlink_sends_every_check_down_the_careful_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _flawed(tmp_path / "d")
    fast = [f.render() for f in findings(root)]
    calls: list[str] = []
    real = checks.is_inside
    monkeypatch.setattr(checks, "is_inside", lambda r, rel: calls.append(rel) or real(r, rel))
    assert [f.render() for f in findings(root)] == fast and calls == []  # no symlink: one walk
    outside = tmp_path / "outside.png"
    outside.write_bytes((root / "images/000.png").read_bytes())
    os.symlink(outside, root / "images/linked.png")
    careful = findings(root)
    assert calls  # the careful path resolved every listed image
    assert "path_escape" in {f.rule for f in careful}
    assert [f.render() for f in careful if f.rule != "path_escape" and "linked" not in f.path] == [
        f for f in fast
    ]


def test_a_path_spelled_otherwise_is_looked_up_on_disk_not_in_the_walk(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", n=12)
    lines = (root / "manifest.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace('"images/000.png"', '"images//000.png"')
    lines[1] = lines[1].replace('"images/001.png"', '"images/./001.png"')
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    rules = {f.rule for f in findings(root)}
    assert "image_missing" not in rules and "path_escape" not in rules
