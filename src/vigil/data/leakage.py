"""Leakage between groups: the same picture under two drivers or vehicles would land in two splits.

Identical bytes under different (driver, vehicle) pairs are critical; near-identical pictures (a
64-bit perceptual hash within `max_bits`, searched with a faiss binary index) that share neither
driver nor vehicle are a warning, because two different scenes can look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def near_duplicate_pairs(hashes: list[bytes], max_bits: int) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance), i < j, of 64-bit hashes within `max_bits`, sorted."""
    import faiss

    if len(hashes) < 2:
        return []
    codes = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 8)
    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    lims, distances, ids = index.range_search(codes, max_bits + 1)
    pairs = []
    for i in range(len(hashes)):
        for k in range(lims[i], lims[i + 1]):
            j = int(ids[k])
            if j > i:
                pairs.append((i, j, int(distances[k])))
    return sorted(pairs)


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
    for i, j, distance in near_duplicate_pairs([c.phash for c in images], max_bits):
        a, b = images[i], images[j]
        # pairs sharing a driver or a vehicle already stay in one split; the others can leak
        if a.sha256 != b.sha256 and not any(
            x == y for x, y in zip(a.groups, b.groups, strict=False)
        ):
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
