"""Hard-negative mining: batch-hard (Hermans et al. 2017) on batches that gather look-alike SKUs.

Why this one. ArcFace pulls each crop towards its SKU's *centre*; the gallery, though, matches a crop
against other *crops* (reference embeddings). A crop can sit on the right side of the centres and
still be nearer to one reference crop of a look-alike SKU than to all of its own. The batch-hard
term acts on exactly that: for each anchor it takes the least similar crop of its own SKU and the
most similar crop of any other SKU in the batch, and asks for a `margin` between them. It needs
positives in every batch, hence P × K batches (P SKUs, K crops each); and a random P SKUs are rarely
look-alikes, so each batch is built around one SKU and its nearest SKUs by the ArcFace centres
(`look_alike_batches`): the hardest negatives are then in the batch to be mined. The alternative,
re-sampling the classes of the top-k hardest negatives more often, changes how often a crop is seen
but not what the loss asks of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def hardest(
    embeddings: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per anchor: the similarity of its hardest positive (least similar same-SKU crop, itself excluded),
    of its hardest negative (most similar other-SKU crop), and that negative's index (-1 when none).

    An anchor without a positive gets positive similarity 1; without a negative, -1 (no loss).
    """
    emb = F.normalize(embeddings, dim=1)
    sim = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=sim.device)
    pos = torch.where(same & ~eye, sim, torch.full_like(sim, 2.0)).min(dim=1).values
    pos = torch.where(pos > 1.5, torch.ones_like(pos), pos)
    neg_sim = torch.where(~same, sim, torch.full_like(sim, -2.0))
    neg, index = neg_sim.max(dim=1)
    index = torch.where(neg < -1.5, torch.full_like(index, -1), index)
    return pos, torch.where(neg < -1.5, -torch.ones_like(neg), neg), index


def batch_hard_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """mean over anchors of max(0, sim(hardest negative) − sim(hardest positive) + margin)."""
    pos, neg, _ = hardest(embeddings, labels)
    return F.relu(neg - pos + margin).mean()


def look_alikes(centres: torch.Tensor, count: int) -> np.ndarray:
    """(C, count) the `count` classes nearest each class by the cosine of their centres (itself excluded)."""
    c = F.normalize(centres.detach().float(), dim=1)
    sim = c @ c.T
    sim.fill_diagonal_(-2.0)
    return sim.topk(min(count, len(c) - 1), dim=1).indices.cpu().numpy()


def look_alike_batches(
    labels: Sequence[int] | np.ndarray,
    classes_per_batch: int,
    per_class: int,
    rng: np.random.Generator,
    neighbours: np.ndarray | None = None,
) -> list[np.ndarray]:
    """One epoch of P × K batches (sample indices): each class anchors batches in turn, joined by its
    nearest classes (`neighbours`, from `look_alikes`) or, without them, by random classes.

    Every sample is used about once per epoch; a class with fewer than K samples is drawn with
    replacement. The order depends only on `rng`, so a seeded epoch is reproducible.
    """
    labels = np.asarray(labels, dtype=np.int64)
    classes = np.unique(labels)
    members = {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    cursor = dict.fromkeys(members, 0)
    p = max(1, min(classes_per_batch, len(classes)))

    def take(c: int) -> np.ndarray:
        pool, start = members[c], cursor[c]
        if len(pool) < per_class:
            return rng.choice(pool, size=per_class, replace=True)
        if start + per_class > len(pool):
            members[c] = pool = rng.permutation(pool)
            start = 0
        cursor[c] = start + per_class
        return pool[start : start + per_class]

    steps = max(1, int(np.ceil(len(labels) / (p * per_class))))
    anchors = np.concatenate(
        [rng.permutation(classes) for _ in range(int(np.ceil(steps / len(classes))))]
    )[:steps]
    batches = []
    for anchor in anchors:
        others = [c for c in classes if c != anchor]
        if neighbours is not None and len(neighbours) > anchor:
            near = [int(c) for c in neighbours[anchor] if int(c) in members and int(c) != anchor]
            rest = [c for c in rng.permutation(others) if c not in near]
            chosen = [int(anchor), *near, *[int(c) for c in rest]][:p]
        else:
            chosen = [int(anchor), *[int(c) for c in rng.permutation(others)]][:p]
        batches.append(np.concatenate([take(c) for c in chosen]))
    return batches
