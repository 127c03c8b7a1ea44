"""Interlocked groups: hold out drivers and vehicles together; quarantine the images between them.

In a fleet, drivers drive several vehicles, so driver and vehicle ids can join every image into one
component and the components strategy cannot split at all (dropping one key would leak the other).
`split.strategy: interlocked` labels every value of the two `interlock_keys` (say every driver and
every vehicle) with a split. An image goes to split s when its driver and its vehicle are both labelled
s: both held out for val (or test), or both kept for train. An image whose driver and vehicle carry
different labels is quarantined: in no list a model trains or is scored on, recorded in
`quarantine.txt` and in the metrics. No driver and no vehicle is then in two splits.

The other links (the other group keys, `session`, identical bytes) join images into atoms that must not
be cut either. The drivers of one atom are merged into one node, and so are its vehicles, so an atom is
labelled as a whole: it lands in one split or in quarantine, never in two splits.

The labelling (vigil.data.interlock_search) minimizes the quarantined share while every split's
share of the kept images stays within `interlock_tolerance` of its fraction, with the strata and
classes balanced as the components strategy balances them; a seeded iterated local search finds it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from vigil.data.interlock_search import EPS, Interlock
from vigil.data.split import (
    POOL,
    QUARANTINE,
    SIZE_WEIGHT,
    SOURCE_SPLIT,
    SPLITS,
    Dimensions,
    ImageInfo,
    SplitResult,
    balance_warnings,
    check_params,
    effective_group_keys,
    finish,
    group_value,
)
from vigil.errors import VigilError
from vigil.params import SplitParams


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Any, b: Any) -> None:
        self.parent[self.find(a)] = self.find(b)


def build_problem(
    labelled: Sequence[ImageInfo],
    primary: Sequence[str],
    links: Sequence[str],
    dims: Dimensions,
    fractions: Sequence[float],
    tolerance: float,
) -> Interlock:
    """Merge each atom's rows (and columns) into one node; sum images per (row node, column node) cell."""
    atoms = _UnionFind()
    for i, im in enumerate(labelled):
        atoms.find(i)
        for link in [(k, v) for k in links if (v := group_value(im.record, k)) is not None] + [
            ("\0", im.digest)
        ]:
            atoms.union(("link", link), i)
    sides: list[_UnionFind] = [_UnionFind(), _UnionFind()]
    node_of: list[tuple[Any, Any]] = []
    first_in_atom: dict[tuple[int, Any], Any] = {}
    for i, im in enumerate(labelled):
        atom = atoms.find(i)
        ends = []
        for side, key in enumerate(primary):
            value = group_value(im.record, key)
            node = ("value", value) if value is not None else ("none", atom)  # absent: free, one per atom
            ends.append(node)
            sides[side].union(node, first_in_atom.setdefault((side, atom), node))
        node_of.append((ends[0], ends[1]))
    ids: list[dict[Any, int]] = []
    names: list[list[list[str]]] = []
    for side in (0, 1):
        groups: dict[Any, list[Any]] = defaultdict(list)
        for node in {n[side] for n in node_of}:
            groups[sides[side].find(node)].append(node)
        ordered = sorted(groups.values(), key=lambda nodes: sorted(map(repr, nodes)))
        ids.append({node: i for i, nodes in enumerate(ordered) for node in nodes})
        names.append([sorted(str(n[1]) for n in nodes if n[0] == "value") for nodes in ordered])
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (row, col) in enumerate(node_of):
        cells[(ids[0][row], ids[1][col])].append(i)
    pairs = sorted(cells)
    vectors = np.zeros((len(pairs), len(dims.names)))
    for c, pair in enumerate(pairs):
        for dim, count in dims.vector(labelled[i] for i in cells[pair]).items():
            vectors[c, dim] = count
    totals = vectors.sum(0).astype(int).tolist()
    return Interlock(
        names[0],
        names[1],
        np.array([p[0] for p in pairs], dtype=np.int64),
        np.array([len(names[0]) + p[1] for p in pairs], dtype=np.int64),
        vectors,
        [cells[p] for p in pairs],
        np.array(fractions, dtype=float),
        np.array(dims.weights(totals, SIZE_WEIGHT)),
        tolerance,
    )


def interlocked_split(
    images: Sequence[ImageInfo], class_names: Sequence[str], params: SplitParams, seed: int
) -> SplitResult:
    """Split labelled images by held-out driver and vehicle sets; the images between go to quarantine."""
    records = [im.record for im in images]
    check_params(params, records)
    primary = list(params.interlock_keys)
    keys = effective_group_keys(params.group_keys, records)
    links = [k for k in keys if k not in primary]
    labelled = sorted((im for im in images if im.labelled), key=lambda im: im.path)
    pool = sorted((im for im in images if not im.labelled), key=lambda im: im.path)
    if not labelled:
        raise VigilError("no labelled images to split", field="split", hint="label some images first")
    if any(im.record.get(SOURCE_SPLIT) is not None for im in labelled):
        raise VigilError(f"the manifest keeps the dataset's own split ({SOURCE_SPLIT}), which the "
                         "interlocked strategy does not honour", field="split.strategy",
                         hint="use split.strategy: components, or import without --keep-split")
    fractions = [float(getattr(params, s)) for s in SPLITS]
    dims = Dimensions.of(labelled, class_names, params.stratify)
    problem = build_problem(labelled, primary, links, dims, fractions, params.interlock_tolerance)
    labels, cost = problem.search(seed)
    counts = problem.counts(labels)
    _check_reached(problem, counts, primary)
    where = problem.place(labels)
    lists = {
        s: sorted(labelled[i].path for c in np.flatnonzero(where == k) for i in problem.members[c])
        for k, s in enumerate(SPLITS)
    }
    lists[POOL] = [im.path for im in pool]
    quarantined = [labelled[i] for c in np.flatnonzero(where < 0) for i in problem.members[c]]
    lists[QUARANTINE] = sorted(im.path for im in quarantined)
    placed = [int(c) for c in np.flatnonzero(where >= 0)]
    vectors = [{d: int(v) for d, v in enumerate(problem.vectors[c]) if v} for c in placed]
    totals = counts.sum(0).astype(int).tolist()
    warnings = balance_warnings(
        dims.names,
        totals,
        counts.astype(int).tolist(),
        fractions,
        vectors,
        [int(where[c]) for c in placed],
        [problem.members[c] for c in placed],
    )
    group_keys = keys + [k for k in primary if k not in keys]
    result = finish(
        images,
        lists,
        warnings,
        group_keys,
        class_names,
        dims.strata,
        [int(where[c]) for c in placed],
        params,
        seed,
        "interlocked",
    )
    result.metrics["labelled_images"] = len(labelled)
    result.metrics[QUARANTINE] = _quarantine_metrics(problem, labels, labelled, quarantined, dims, primary)
    result.metrics["interlock"] = _interlock_metrics(
        problem, labels, primary, cost, params.interlock_tolerance
    )
    return result


def _check_reached(problem: Interlock, counts: np.ndarray, primary: Sequence[str]) -> None:
    """Refuse when the best labelling leaves a split empty or misses a fraction by more than the tolerance."""
    images = counts[:, 0]
    kept = images.sum()
    shares = ", ".join(
        f"{SPLITS[s]} {images[s] / max(kept, 1):.3f} (target {problem.fractions[s]:g})"
        for s in problem.active
    )
    what = f"{len(problem.row_values)} {primary[0]} and {len(problem.col_values)} {primary[1]} groups"
    empty = [SPLITS[s] for s in problem.active if images[s] == 0]
    if empty:
        raise VigilError(
            f"holding out {primary[0]} and {primary[1]} together leaves {', '.join(empty)} empty ({what})",
            field="split.interlock_keys",
            hint="add labelled images from more groups, or set an unneeded fraction to 0",
        )
    if any(abs(images[s] / kept - problem.fractions[s]) > problem.tolerance + EPS for s in problem.active):
        raise VigilError(
            f"the best split found misses a fraction by more than the tolerance: {shares} of the "
            f"{int(kept)} kept images ({what})",
            field="split.interlock_tolerance",
            hint="raise split.interlock_tolerance, or change the fractions",
        )


def _quarantine_metrics(
    problem: Interlock,
    labels: np.ndarray,
    labelled: Sequence[ImageInfo],
    quarantined: Sequence[ImageInfo],
    dims: Dimensions,
    primary: Sequence[str],
) -> dict[str, Any]:
    """Counts, the reason per pair of labels, per stratum, and the list."""
    why: Counter[str] = Counter()
    for c in np.flatnonzero(problem.place(labels) < 0):
        row, col = SPLITS[labels[problem.cell_row[c]]], SPLITS[labels[problem.cell_col[c]]]
        why[f"{primary[0]} in {row}, {primary[1]} in {col}"] += len(problem.members[c])
    return {
        "images": len(quarantined),
        "share": round(len(quarantined) / len(labelled), 4),
        "boxes": sum(len(im.classes) for im in quarantined),
        "why": dict(sorted(why.items())),
        "per_stratum": {
            k: {v: sum(1 for im in quarantined if group_value(im.record, k) == v) for v in values}
            for k, values in dims.strata.items()
        },
        "list": sorted(im.path for im in quarantined),
    }


def _interlock_metrics(
    problem: Interlock, labels: np.ndarray, primary: Sequence[str], cost: float, tolerance: float
) -> dict[str, Any]:
    """Which driver and vehicle values each split holds (train = kept, val/test = held out)."""
    sides = (problem.row_values, problem.col_values)
    held: dict[str, dict[str, list[str]]] = {}
    for s in problem.active:
        held[SPLITS[s]] = {}
        for side, key in enumerate(primary):
            offset = 0 if side == 0 else problem.rows
            held[SPLITS[s]][key] = sorted(
                v for n, values in enumerate(sides[side]) if labels[offset + n] == s for v in values
            )
    merged = {key: sum(1 for values in sides[side] if len(values) > 1) for side, key in enumerate(primary)}
    return {
        "keys": list(primary),
        "tolerance": tolerance,
        "cells": len(problem.members),
        "cost": round(cost, 6),
        "nodes": {key: len(sides[side]) for side, key in enumerate(primary)},
        "merged_nodes": merged,
        "values": held,
    }
