"""top-1 / top-5, per-SKU accuracy and the look-alike pairs, against hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.sku.evaluate import sku_report

SKUS = ["a", "b", "c", "d", "e", "f"]


def scores_for(ranks: list[list[str]]) -> np.ndarray:
    """Scores that rank the listed SKUs first, in order."""
    out = np.zeros((len(ranks), len(SKUS)))
    for row, ranked in enumerate(ranks):
        for place, name in enumerate(ranked):
            out[row, SKUS.index(name)] = 10 - place
    return out


def test_topk_per_sku_and_confused_pairs() -> None:
    truth = ["a", "a", "b", "b", "c", "d"]
    ranks = [["a"], ["b", "a"], ["a", "b"], ["b"], ["d", "e", "f", "a", "b", "c"], ["d"]]
    report = sku_report(truth, scores_for(ranks), SKUS)
    assert report["top1"] == pytest.approx(3 / 6)
    assert report["top5"] == pytest.approx(5 / 6)  # c is ranked sixth
    assert report["per_sku"]["a"] == {"crops": 2, "top1": 0.5}
    assert report["per_sku"]["b"]["top1"] == 0.5 and "e" not in report["per_sku"]
    first = report["confused_pairs"][0]
    assert (first["a"], first["b"], first["confusions"], first["a_as_b"], first["b_as_a"]) == (
        "a",
        "b",
        2,
        1,
        1,
    )
    assert report["confused_pairs"][1]["confusions"] == 1 and len(report["confused_pairs"]) == 2


def test_a_true_sku_missing_from_the_gallery_is_an_error() -> None:
    with pytest.raises(VigilError, match=r"true SKUs not in the gallery: \['z'\]"):
        sku_report(["z"], np.zeros((1, 6)), SKUS)


def test_unreached_skus_score_lowest() -> None:
    scores = np.full((1, 6), -np.inf)
    scores[0, 2] = 0.1
    assert sku_report(["c"], scores, SKUS)["top1"] == 1.0
