"""ArcFace (Deng et al. 2019): an additive angular margin on the true class, so each SKU's embeddings
gather tightly around its own direction and look-alike SKUs stay at least `margin` radians apart.

The head holds one unit vector per training SKU; logits are `scale · cos θ`, with the true class's
angle widened to θ + margin. Only the embedder is kept after training: a gallery of reference
embeddings replaces the head, which is why a new SKU needs no retraining (gallery.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ArcFaceHead(nn.Module):
    """`scale · cos(θ + margin)` for the true class, `scale · cos θ` for the others.

    `scale` (s) sets how peaked the softmax is on the unit sphere (the field uses 30–64); `margin` (m,
    radians, 0.2–0.5) is the angular gap. Past θ > π − m the target logit falls back to
    `cos θ − m·sin m` (InsightFace's "easy margin off"), so it keeps decreasing in θ.
    """

    def __init__(self, dim: int, num_classes: int, scale: float, margin: float) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError("ArcFace needs at least two classes")
        if not 0 <= margin < math.pi / 2:
            raise ValueError(f"margin {margin} is not in [0, π/2) radians")
        if scale <= 0:
            raise ValueError(f"scale {scale} must be positive")
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale, self.margin = float(scale), float(margin)
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.threshold = math.cos(math.pi - margin)
        self.fallback = math.sin(math.pi - margin) * margin

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, C) cosine of each embedding with each class centre (no margin): predictions use this."""
        return F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N, C) logits for cross-entropy, the margin added to each row's true class."""
        cos = self.cosine(embeddings).clamp(-1.0, 1.0)
        sin = torch.sqrt((1.0 - cos * cos).clamp_min(1e-7))
        with_margin = cos * self.cos_m - sin * self.sin_m  # cos(θ + m)
        with_margin = torch.where(cos > self.threshold, with_margin, cos - self.fallback)
        onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return self.scale * (onehot * with_margin + (1.0 - onehot) * cos)

    def centres(self) -> torch.Tensor:
        """(C, dim) unit class centres (mining uses them to find look-alike SKUs)."""
        return F.normalize(self.weight.detach(), dim=1)
