"""ArcFace's margin and the batch-hard mining that finds look-alike SKUs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vigil.sku.arcface import ArcFaceHead
from vigil.sku.mining import batch_hard_loss, hardest, look_alike_batches, look_alikes


def test_arcface_widens_only_the_true_class_angle() -> None:
    head = ArcFaceHead(dim=2, num_classes=3, scale=10.0, margin=0.3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    emb = F.normalize(torch.tensor([[1.0, 0.2]]), dim=1)
    labels = torch.tensor([0])
    logits = head(emb, labels)
    cos = head.cosine(emb).detach()
    theta = math.acos(cos[0, 0].item())
    assert logits[0, 0].item() == pytest.approx(10 * math.cos(theta + 0.3), abs=1e-5)
    assert torch.allclose(logits[0, 1:], 10 * cos[0, 1:])
    no_margin = ArcFaceHead(2, 3, 10.0, 0.0)
    no_margin.load_state_dict(head.state_dict())
    assert F.cross_entropy(head(emb, labels), labels) > F.cross_entropy(
        no_margin(emb, labels), labels
    )


def test_arcface_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="margin"):
        ArcFaceHead(4, 3, 30.0, 2.0)
    with pytest.raises(ValueError, match="two classes"):
        ArcFaceHead(4, 1, 30.0, 0.3)


def test_batch_hard_picks_the_most_similar_other_sku() -> None:
    emb = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.6], [0.0, 1.0]]), dim=1)
    labels = torch.tensor([0, 0, 1, 2])
    pos, neg, index = hardest(emb, labels)
    assert index.tolist()[:2] == [
        2,
        2,
    ]  # for both crops of SKU 0, SKU 1's crop is the hardest negative
    assert index[3].item() == 2
    assert pos[2].item() == 1.0  # no positive in the batch: no pull
    assert neg[0].item() == pytest.approx(0.8, abs=1e-6)
    far = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]]), dim=1)
    assert batch_hard_loss(far, torch.tensor([0, 0, 1, 1]), 0.2).item() == 0.0
    assert batch_hard_loss(emb, labels, 0.2).item() > 0


def test_batches_gather_look_alike_skus() -> None:
    centres = torch.tensor(
        [[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99], [-1.0, 0.0], [-0.99, -0.1]]
    )
    neighbours = look_alikes(centres, 1)
    assert neighbours[:, 0].tolist() == [1, 0, 3, 2, 5, 4]
    labels = np.repeat(np.arange(6), 5)
    batches = look_alike_batches(labels, 2, 3, np.random.default_rng(0), neighbours)
    assert sum(len(b) for b in batches) >= len(labels) and all(len(b) == 6 for b in batches)
    for batch in batches:
        classes = sorted(set(labels[batch].tolist()))
        assert len(classes) == 2 and neighbours[classes[0], 0] == classes[1]
    again = look_alike_batches(labels, 2, 3, np.random.default_rng(0), neighbours)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
