"""Leakage between groups: the same picture under two drivers or vehicles would land in two splits.

Identical bytes under different (driver, vehicle) pairs are critical; near-identical pictures (a
64-bit perceptual hash within `max_bits`, searched with a faiss binary index: multi-index hashing at
scale) that share neither driver nor vehicle are a warning, because two different scenes can look alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.data.findings import CRITICAL, WARNING, Finding

GROUP_FIELDS = "driver_id vehicle_id"


@dataclass(frozen=True)
class LeakCandidate:
    """One decoded image: where it is listed, its groups and its two hashes."""

    rel: str
    line: int
    groups: tuple[str, ...]
    sha256: str
    phash: bytes


MULTIHASH_MIN = 4096  # hashes from which the multi-index search beats the exhaustive one


def _index(n: int, max_bits: int) -> Any:
    """An exact range-search index for 64-bit codes within `max_bits`.

    Many codes: faiss' multi-index hashing with `max_bits + 1` disjoint substrings, probed without
    flips. Two codes within `max_bits` bits differ in at most `max_bits` substrings, so at least one
    substring matches exactly and lands them in one bucket (the pigeonhole principle): every pair is
    found, and faiss keeps only those within the radius. It visits bucket-mates instead of all n²
    pairs. Few codes, or a radius that leaves substrings too short to bucket: the exhaustive index.
    """
    import faiss

    if n < MULTIHASH_MIN or max_bits + 1 > 16:
        return faiss.IndexBinaryFlat(64)
    index = faiss.IndexBinaryMultiHash(64, max_bits + 1, 64 // (max_bits + 1))
    index.nflip = 0
    return index


def near_duplicate_arrays(
    hashes: list[bytes], max_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of 64-bit hashes within `max_bits`, as arrays (i, j, distance) with i < j, sorted by (i, j)."""
    empty = np.zeros(0, dtype=np.int64)
    if len(hashes) < 2:
        return empty, empty, empty
    codes = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 8)
    index = _index(len(hashes), max_bits)
    index.add(codes)
    lims, distances, ids = index.range_search(codes, max_bits + 1)
    first = np.repeat(np.arange(len(hashes), dtype=np.int64), np.diff(lims.astype(np.int64)))
    ids = ids.astype(np.int64)
    keep = ids > first
    i, j, d = first[keep], ids[keep], distances[keep].astype(np.int64)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def near_duplicate_pairs(hashes: list[bytes], max_bits: int) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance), i < j, of 64-bit hashes within `max_bits`, sorted."""
    i, j, d = near_duplicate_arrays(hashes, max_bits)
    return list(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))


def _codes(values: list[Any]) -> np.ndarray:
    """An integer code per value: equal values, equal codes."""
    seen: dict[Any, int] = {}
    return np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int64)


def find_leaks(images: list[LeakCandidate], max_bits: int) -> list[Finding]:
    """Findings for identical (critical) and near-identical (warning) pictures across groups."""
    images = sorted(images, key=lambda c: c.rel)
    findings = []
    by_sha: dict[str, list[LeakCandidate]] = {}
    for image in images:
        by_sha.setdefault(image.sha256, []).append(image)
    for same in by_sha.values():
        first = same[0]
        for other in same[1:]:
            if other.groups != first.groups:
                findings.append(
                    Finding(
                        CRITICAL,
                        "leak_identical",
                        other.rel,
                        f"identical bytes to {first.rel} but under driver/vehicle {other.groups} "
                        f"vs {first.groups}",
                        "an image may belong to one driver and one vehicle: remove the copy or fix its ids",
                        line=other.line,
                        field=GROUP_FIELDS,
                    )
                )
    # video frames are near-duplicates within their vehicle by nature: millions of such pairs at
    # 100k images. They are dropped as arrays, so only the pairs that can leak become findings.
    i, j, d = near_duplicate_arrays([c.phash for c in images], max_bits)
    if len(i):
        across = _codes([c.sha256 for c in images])
        across = across[i] != across[j]
        for key in range(max((len(c.groups) for c in images), default=0)):
            key_codes = _codes([c.groups[key] if key < len(c.groups) else None for c in images])
            # pairs sharing a driver or a vehicle already stay in one split; the others can leak
            across &= key_codes[i] != key_codes[j]
        i, j, d = i[across], j[across], d[across]
    for a_index, b_index, distance in zip(i.tolist(), j.tolist(), d.tolist(), strict=True):
        a, b = images[a_index], images[b_index]
        findings.append(
            Finding(
                WARNING,
                "leak_near_duplicate",
                b.rel,
                f"near-duplicate of {a.rel} ({distance}/64 bits apart) "
                "sharing neither driver nor vehicle",
                "check the two are different scenes; if not, give them the same driver and vehicle",
                line=b.line,
                field=GROUP_FIELDS,
            )
        )
    return findings
