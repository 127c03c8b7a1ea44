"""The interlocked labelling problem and its search: which split each driver and each vehicle gets.

Nodes are the values of the two interlock keys (rows: drivers, columns: vehicles, after merging the
ones an atom joins); a cell is the images of one (row, column) pair. A labelling gives every node a
split; a cell is kept in split s when its row and its column are both labelled s, else quarantined.

Cost, one number: the quarantined share of the labelled images; plus OFF_FRACTION when any split's
share of the kept images misses its fraction by more than the tolerance (so every labelling within
tolerance beats every one outside), plus FRACTION_PENALTY per unit beyond it (a slope the search can
follow back); plus EMPTY_SPLIT per empty split; plus STRATA_WEIGHT × the stratum and class balance of
the kept images (the components strategy's squared shares; an empty (split, value) cell weighs as
much as 2 % of the images quarantined).

Search (seeded, deterministic; a budget of move evaluations bounds it on large fleets): first-
improvement local search over four moves — relabel one node; relabel a row and a column of one cell
together (the images they share move with them); swap two nodes' labels on one side; re-seed a
held-out split at one cell (its nodes back to the largest split, the cell's row and column to it).
Started from all-train and from random labellings, each local optimum is kicked (a few nodes
relabelled, or a held-out split re-seeded at random) and searched again, keeping the best: iterated
local search. `exhaustive` enumerates every labelling of a small instance, as a yardstick
(benchmarks/interlock_split.py, tests/test_split.py).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from vigil.data.split import SPLITS

EMPTY_SPLIT = 10.0  # an active split left empty: worse than quarantining everything
OFF_FRACTION = 100.0  # any split beyond its tolerance: every labelling within tolerance is better
FRACTION_PENALTY = 10.0  # … plus this per unit of share beyond it, so the search can walk back within
STRATA_WEIGHT = 0.2  # weight of the strata/class balance next to the quarantined share
EMPTY_CELL = 0.1  # an empty (split, stratum value or class) cell, before STRATA_WEIGHT
STARTS = 10  # all-train, then seeded random labellings
KICKS = 20  # perturb-and-search rounds per start
SWAP_NODES = 80  # no swap moves on a side with more nodes than this (they are quadratic)
EVAL_BUDGET = 300_000  # move evaluations in all; the search stops past it (a count: deterministic)
EXHAUSTIVE_LIMIT = 20_000_000
EPS = 1e-12


@dataclass
class Interlock:
    """The labelling problem: row nodes (first key), column nodes (second key) and the cells between.

    Nodes 0..R-1 are rows, R..R+C-1 columns. A cell is the images of one (row, column) pair; its
    `vectors` row counts them over the balance dimensions (dim 0 = images).
    """

    row_values: list[list[str]]
    col_values: list[list[str]]
    cell_row: np.ndarray
    cell_col: np.ndarray
    vectors: np.ndarray
    members: list[list[int]]
    fractions: np.ndarray
    weights: np.ndarray
    tolerance: float
    active: list[int] = field(init=False)
    node_cells: list[np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.active = [s for s in range(len(SPLITS)) if self.fractions[s] > 0]
        self.totals = self.vectors.sum(0)
        self.active_mask = self.fractions > 0
        self.cell_dims = (self.totals > 0) & (np.arange(len(self.totals)) > 0)
        touching: list[list[int]] = [[] for _ in range(self.nodes)]
        for c, (r, k) in enumerate(zip(self.cell_row.tolist(), self.cell_col.tolist(), strict=True)):
            touching[r].append(c)
            touching[k].append(c)
        self.node_cells = [np.array(cells, dtype=np.int64) for cells in touching]

    @property
    def rows(self) -> int:
        return len(self.row_values)

    @property
    def nodes(self) -> int:
        return len(self.row_values) + len(self.col_values)

    # ------------------------------------------------------------ evaluation

    def place(self, labels: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """Split index per cell: the common label of its row and column, or -1 (quarantined)."""
        idx = np.arange(len(self.members)) if cells is None else cells
        row, col = labels[self.cell_row[idx]], labels[self.cell_col[idx]]
        return np.where(row == col, row, -1)

    def counts(self, labels: np.ndarray) -> np.ndarray:
        """(splits, dims) counts of the kept images."""
        where = self.place(labels)
        out = np.zeros((len(SPLITS), self.vectors.shape[1]))
        for s in self.active:
            out[s] = self.vectors[where == s].sum(0)
        return out

    def cost(self, counts: np.ndarray) -> np.ndarray:
        """Cost of labellings from their counts, shape (..., splits, dims) → (...)."""
        f, act = self.fractions, self.active_mask
        images = counts[..., 0]
        kept = images.sum(-1)
        quarantined = 1.0 - kept / self.totals[0]
        empty = ((images == 0) & act).sum(-1)
        shares = images / np.maximum(kept, 1.0)[..., None]
        over = (np.clip(np.abs(shares - f) - self.tolerance, 0.0, None) * act).sum(-1)
        over = np.where(over > EPS, over + OFF_FRACTION / FRACTION_PENALTY, 0.0)
        per_dim = counts.sum(-2)
        rel = (counts - f[:, None] * per_dim[..., None, :]) / np.maximum(per_dim, 1.0)[..., None, :]
        squares = ((rel**2).sum(-2) * self.weights).sum(-1)
        empty_cells = (((counts == 0) & act[:, None]) & self.cell_dims).sum((-2, -1))
        return (
            quarantined
            + EMPTY_SPLIT * empty
            + FRACTION_PENALTY * over
            + STRATA_WEIGHT * (squares + EMPTY_CELL * empty_cells)
        )

    def score(self, counts: list[list[float]]) -> float:
        """`cost` of one labelling in plain Python (the search calls it per move, where numpy is slower)."""
        (f0, f1, f2), (a0, a1, a2), tol = self._f, self._act, self.tolerance
        x, y, z = counts
        kept = x[0] + y[0] + z[0]
        value, off = 1.0 - kept / self._n, 0.0
        for images, fs, act in ((x[0], f0, a0), (y[0], f1, a1), (z[0], f2, a2)):
            if act:
                if images == 0:
                    value += EMPTY_SPLIT
                off += max(abs(images / max(kept, 1.0) - fs) - tol, 0.0)
        if off > EPS:
            value += OFF_FRACTION + FRACTION_PENALTY * off
        squares, empty = 0.0, 0
        for d, weight, cell in self._dims:
            u, v, w = x[d], y[d], z[d]
            total = u + v + w
            if total:
                squares += (
                    weight
                    * ((u - f0 * total) ** 2 + (v - f1 * total) ** 2 + (w - f2 * total) ** 2)
                    / max(total, 1.0) ** 2
                )
            if cell:
                empty += (a0 and u == 0) + (a1 and v == 0) + (a2 and w == 0)
        return value + STRATA_WEIGHT * (squares + EMPTY_CELL * empty)

    def _moved(
        self, labels: list[int], counts: list[list[float]], nodes: list[int], new: list[int]
    ) -> list[list[float]] | None:
        """The counts once `nodes` take labels `new`; None when no image changes place."""
        changed = dict(zip(nodes, new, strict=True))
        cells = (
            self._node_cells[nodes[0]]
            if len(nodes) == 1
            else sorted(set().union(*(self._node_cells[n] for n in nodes)))
        )
        out: list[list[float]] | None = None
        for c in cells:
            r, k = self._cells[c]
            before = labels[r] if labels[r] == labels[k] else -1
            lr, lk = changed.get(r, labels[r]), changed.get(k, labels[k])
            after = lr if lr == lk else -1
            if before == after:
                continue
            if out is None:
                out = [row[:] for row in counts]
            for d, v in self._sparse[c]:
                if before >= 0:
                    out[before][d] -= v
                if after >= 0:
                    out[after][d] += v
        return out

    def _counts_list(self, labels: list[int]) -> list[list[float]]:
        return self.counts(np.array(labels, dtype=np.int64)).tolist()

    def _prepare(self) -> None:
        """Plain-Python copies of what `score` and `_moved` read."""
        self._f = self.fractions.tolist()
        self._act = self.active_mask.tolist()
        self._dims = list(
            zip(range(len(self.weights)), self.weights.tolist(), self.cell_dims.tolist(), strict=True)
        )
        self._n = float(self.totals[0])
        self._cells = list(zip(self.cell_row.tolist(), self.cell_col.tolist(), strict=True))
        self._node_cells = [cells.tolist() for cells in self.node_cells]
        self._sparse = [[(d, float(v)) for d, v in enumerate(row) if v] for row in self.vectors.tolist()]

    # ------------------------------------------------------------ search

    def _moves(self, labels: list[int], rng: random.Random) -> Iterator[tuple[list[int], list[int]]]:
        """Relabel one node; a row and a column of one cell together; swap two nodes of a side; re-seed.

        Re-seeding moves a held-out split whole: its nodes go back to the largest split and one cell's
        row and column take its label, which single moves cannot reach without a worse state between.
        """
        nodes = list(range(self.nodes))
        rng.shuffle(nodes)
        for n in nodes:
            for s in self.active:
                if labels[n] != s:
                    yield [n], [s]
        cells = list(range(len(self._cells)))
        rng.shuffle(cells)
        for c in cells:
            r, k = self._cells[c]
            for s in self.active:
                if not labels[r] == labels[k] == s:
                    yield [r, k], [s, s]
        for side in (range(self.rows), range(self.rows, self.nodes)):
            if len(side) <= SWAP_NODES:
                for i, j in itertools.combinations(side, 2):
                    if labels[i] != labels[j]:
                        yield [i, j], [labels[j], labels[i]]
        for c in cells:
            r, k = self._cells[c]
            for s in self.active:
                if s != self._biggest and not labels[r] == labels[k] == s:
                    held = [n for n in range(self.nodes) if labels[n] == s and n not in (r, k)]
                    yield [*held, r, k], [self._biggest] * len(held) + [s, s]

    def _descend(self, labels: list[int], rng: random.Random, budget: list[int]) -> float:
        """First-improvement local search on `labels`, in place; returns the cost reached."""
        counts = self._counts_list(labels)
        cost = self.score(counts)
        improved = True
        while improved and budget[0] > 0:
            improved = False
            for nodes, new in self._moves(labels, rng):
                budget[0] -= 1
                if budget[0] <= 0:
                    break
                moved = self._moved(labels, counts, nodes, new)
                if moved is None:
                    continue
                value = self.score(moved)
                if value < cost - EPS:
                    for n, s in zip(nodes, new, strict=True):
                        labels[n] = s
                    counts, cost, improved = moved, value, True
        return cost

    def _kick(self, labels: list[int], rng: random.Random) -> list[int]:
        """A random jump: relabel a few nodes, or (half the time) re-seed a held-out split at random."""
        kicked = list(labels)
        held = [s for s in self.active if s != self._biggest]
        if held and rng.random() < 0.5:
            s = rng.choice(held)
            r, k = self._cells[rng.randrange(len(self._cells))]
            kicked = [self._biggest if label == s else label for label in kicked]
            kicked[r] = kicked[k] = s
            return kicked
        for n in rng.sample(range(self.nodes), k=max(1, round(0.15 * self.nodes))):
            kicked[n] = rng.choice(self.active)
        return kicked

    def search(self, seed: int) -> tuple[np.ndarray, float]:
        """The best labelling the seeded iterated local search finds, and its cost."""
        self._prepare()
        rng = random.Random(seed)
        budget = [EVAL_BUDGET]
        self._biggest = biggest = max(self.active, key=lambda s: (self.fractions[s], -s))
        weights = [math.sqrt(self.fractions[s]) for s in self.active]  # kept share of s ∝ (its node share)²
        best: tuple[list[int], float] | None = None
        for start in range(STARTS):
            labels = [biggest] * self.nodes if start == 0 else rng.choices(self.active, weights, k=self.nodes)
            run = (labels, self._descend(labels, rng, budget))
            for _ in range(KICKS):
                if budget[0] <= 0:
                    break
                kicked = self._kick(run[0], rng)
                cost = self._descend(kicked, rng, budget)
                if cost < run[1] - EPS:
                    run = (kicked, cost)
            if best is None or run[1] < best[1] - EPS:
                best = run
            if budget[0] <= 0:
                break
        assert best is not None
        return np.array(best[0], dtype=np.int64), best[1]


@dataclass(frozen=True)
class Optimum:
    """What exhaustive enumeration finds: the least cost, and the least quarantine meeting the fractions."""

    labels: np.ndarray
    cost: float
    quarantined: float  # quarantined share of the least-cost labelling
    min_quarantined: float  # least quarantined share of any labelling with every split within tolerance


def exhaustive(problem: Interlock, chunk: int = 256) -> Optimum:
    """Every labelling of a small instance (splits^(rows + columns) of them), in numpy blocks."""
    active, rows = problem.active, problem.rows
    count = len(active) ** problem.nodes
    if count > EXHAUSTIVE_LIMIT:
        raise ValueError(f"{count} labellings is too many to enumerate")
    row_labels = np.array(list(itertools.product(active, repeat=rows)), dtype=np.int64).reshape(-1, rows)
    col_labels = np.array(
        list(itertools.product(active, repeat=problem.nodes - rows)), dtype=np.int64
    ).reshape(-1, problem.nodes - rows)
    cell_rows, cell_cols = problem.cell_row, problem.cell_col - rows
    dims = problem.vectors.shape[1]
    col_in = {s: (col_labels[:, cell_cols] == s).astype(float) for s in active}
    best = (math.inf, 0, 0, 1.0)
    min_quarantined = math.inf
    for i0 in range(0, len(row_labels), chunk):
        block = row_labels[i0 : i0 + chunk]
        counts = np.zeros((len(block), len(col_labels), len(SPLITS), dims))
        for s in active:
            row_in = (block[:, cell_rows] == s).astype(float)
            for d in range(dims):
                counts[:, :, s, d] = (row_in * problem.vectors[:, d]) @ col_in[s].T
        costs = problem.cost(counts)
        i, j = np.unravel_index(int(np.argmin(costs)), costs.shape)
        images = counts[..., 0]
        kept = images.sum(-1)
        quarantined = 1.0 - kept / problem.totals[0]
        if costs[i, j] < best[0] - EPS:
            best = (float(costs[i, j]), i0 + int(i), int(j), float(quarantined[i, j]))
        shares = images / np.maximum(kept, 1.0)[..., None]
        within = ((np.abs(shares - problem.fractions) <= problem.tolerance + EPS) | ~problem.active_mask).all(
            -1
        )
        within &= ((images > 0) | ~problem.active_mask).all(-1)
        if within.any():
            min_quarantined = min(min_quarantined, float(quarantined[within].min()))
    labels = np.concatenate([row_labels[best[1]], col_labels[best[2]]])
    return Optimum(labels, best[0], best[3], min_quarantined)
