"""The second stage's scores: top-1 / top-5, per-SKU accuracy, and which look-alike SKUs it confuses.

Given each crop's true SKU and its scores for every SKU (a gallery's best similarity per SKU,
`Gallery.scores`), it reports what the shelf team gates on (top-1) and what a person fixes next:
the pairs of SKUs most often taken for each other, counted both ways, with the cosine of their
centres when given. Built on sklearn's `top_k_accuracy_score` and `confusion_matrix`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vigil.errors import VigilError


def sku_report(
    truth: Sequence[str],
    scores: Any,
    skus: Sequence[str],
    ks: Sequence[int] = (1, 5),
    pairs: int = 10,
) -> dict[str, Any]:
    """top-k accuracy for each k, per-SKU accuracy (recall of its crops), and the `pairs` most-confused pairs.

    `scores` is (N, S), column j scoring `skus[j]`; −inf (no reference reached) counts as the lowest
    score. Every true SKU must be a gallery SKU: a crop of a SKU the gallery lacks cannot be right,
    and is an error to fix in the data, not a silent miss.
    """
    from sklearn.metrics import confusion_matrix, top_k_accuracy_score

    names = list(skus)
    index = {name: i for i, name in enumerate(names)}
    missing = sorted(set(truth) - set(index))
    if missing:
        raise VigilError(
            f"true SKUs not in the gallery: {missing[:5]}",
            field="skus",
            hint="add their reference crops to the gallery",
        )
    s = np.asarray(scores, dtype=np.float64).reshape(len(truth), len(names))
    s = np.where(np.isfinite(s), s, -1e9)
    y = np.array([index[t] for t in truth], dtype=np.int64)
    labels = np.arange(len(names))
    if not len(y):
        return {"crops": 0, **{f"top{k}": None for k in ks}, "per_sku": {}, "confused_pairs": []}
    report: dict[str, Any] = {"crops": int(len(y))}
    for k in ks:
        if len(names) <= k:  # sklearn refuses k ≥ classes; every crop is then within the top k
            report[f"top{k}"] = 1.0
        elif len(names) == 2:
            report[f"top{k}"] = float(np.mean(s.argmax(1) == y))
        else:
            report[f"top{k}"] = float(top_k_accuracy_score(y, s, k=k, labels=labels))
    pred = s.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=labels)
    support = cm.sum(axis=1)
    report["per_sku"] = {
        names[i]: {"crops": int(support[i]), "top1": float(cm[i, i] / support[i])}
        for i in range(len(names))
        if support[i]
    }
    report["confused_pairs"] = confused_pairs(cm, names, pairs)
    return report


def confused_pairs(cm: np.ndarray, names: Sequence[str], count: int) -> list[dict[str, Any]]:
    """The unordered SKU pairs with the most crops taken for each other (a→b plus b→a), most first."""
    off = cm - np.diag(np.diag(cm))
    both = np.triu(off + off.T, k=1)
    order = np.argsort(-both, axis=None, kind="stable")
    out = []
    for flat in order[:count]:
        a, b = np.unravel_index(flat, both.shape)
        if both[a, b] == 0:
            break
        out.append(
            {
                "a": names[a],
                "b": names[b],
                "confusions": int(both[a, b]),
                "a_as_b": int(off[a, b]),
                "b_as_a": int(off[b, a]),
            }
        )
    return out
