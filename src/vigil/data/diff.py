"""The diff of two dataset versions: added, removed and changed paths per kind, by sha256.

Either side is a dataset folder (hashed now, with the cache) or a per-file manifest (`files.jsonl`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.data.hashing import KINDS, FileEntry, hash_tree, read_files_manifest
from vigil.errors import VigilError


@dataclass
class KindDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class ManifestDiff:
    """Added / removed / changed paths per kind (image, label, manifest, classes, other)."""

    kinds: dict[str, KindDiff]
    unchanged: int

    @property
    def identical(self) -> bool:
        return not any(self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: {"added": d.added, "removed": d.removed, "changed": d.changed}
            for k, d in self.kinds.items()
        }
        out["unchanged"] = self.unchanged
        out["identical"] = self.identical
        return out


def diff_manifests(old: Iterable[FileEntry], new: Iterable[FileEntry]) -> ManifestDiff:
    """Compare two per-file manifests by path and sha256 (a moved file is one removal plus one addition)."""
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    kinds = {k: KindDiff() for k in KINDS}
    unchanged = 0
    for rel in sorted(before.keys() | after.keys()):
        a, b = before.get(rel), after.get(rel)
        if a is None and b is not None:
            kinds[b.kind].added.append(rel)
        elif b is None and a is not None:
            kinds[a.kind].removed.append(rel)
        elif a is not None and b is not None:
            if a.sha256 != b.sha256:
                kinds[b.kind].changed.append(rel)
            else:
                unchanged += 1
    return ManifestDiff(kinds, unchanged)


def entries_of(path: Path, *, workers: int = 2, cache_path: Path | None = None) -> list[FileEntry]:
    """A dataset folder (hashed now) or a per-file manifest (read) as manifest entries."""
    path = Path(path)
    if path.is_dir():
        return hash_tree(path, workers=workers, cache_path=cache_path).entries
    if path.is_file():
        return read_files_manifest(path)
    raise VigilError(
        "not found",
        path=path,
        hint="pass a dataset folder or a files.jsonl written by `vigil data hash`",
    )


_PLURAL = {
    "image": "images",
    "label": "labels",
    "manifest": "manifest",
    "classes": "classes",
    "other": "other files",
}


def summary_line(diff: ManifestDiff) -> str:
    """One line: images and labels always, the other kinds only when they changed."""
    parts = [
        f"{_PLURAL[k]} +{len(d.added)} -{len(d.removed)} ~{len(d.changed)}"
        for k, d in diff.kinds.items()
        if k in ("image", "label") or d
    ]
    return (
        ", ".join(parts)
        + f"; {diff.unchanged} unchanged"
        + ("" if not diff.identical else " (identical)")
    )


def format_diff(diff: ManifestDiff) -> str:
    """Readable listing: one block per kind that changed (`+` added, `-` removed, `~` changed)."""
    blocks = []
    for kind, d in diff.kinds.items():
        if not d:
            continue
        lines = [f"{_PLURAL[kind]}:"]
        lines += (
            [f"  + {p}" for p in d.added]
            + [f"  - {p}" for p in d.removed]
            + [f"  ~ {p}" for p in d.changed]
        )
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
