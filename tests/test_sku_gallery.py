"""The FAISS gallery: exact top-k SKUs, any metric, saved with its sidecar, SKUs added without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.sku.gallery import Gallery, build_gallery


def unit(rows: list[list[float]]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


REFS = unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.2], [0, 0, 1]])
NAMES = ["cola", "cola", "lemonade", "lemonade", "water"]


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_query_gives_distinct_skus_nearest_first(metric: str) -> None:
    gallery = build_gallery(REFS, NAMES, 3, metric, "Flat", "abc")
    (top,) = gallery.query(unit([[0.95, 0.05, 0.1]]), k=3)
    assert [m.sku for m in top] == ["cola", "water", "lemonade"]
    assert top[0].similarity == pytest.approx(
        float((REFS[:2] @ unit([[0.95, 0.05, 0.1]])[0]).max()), abs=1e-5
    )
    assert top[0].similarity > top[1].similarity > top[2].similarity
    scores = gallery.scores(unit([[0.95, 0.05, 0.1]]))
    assert scores.shape == (1, 3) and gallery.skus[int(scores.argmax())] == "cola"


def test_hnsw_index_type_answers_alike() -> None:
    gallery = build_gallery(REFS, NAMES, 3, "cosine", "HNSW32", "abc")
    assert gallery.query(unit([[0, 0.1, 1]]), 1)[0][0].sku == "water"
    with pytest.raises(VigilError, match="faiss cannot build 'Nonsense9'"):
        Gallery(3, "cosine", "Nonsense9")
    with pytest.raises(VigilError, match="'hamming' is not a metric"):
        Gallery(3, "hamming")


def test_a_new_sku_is_added_without_touching_the_others(tmp_path: Path) -> None:
    gallery = build_gallery(REFS[:4], NAMES[:4], 3, "cosine", "Flat", "abc")
    before = gallery.query(unit([[1, 0, 0]]), 1)
    assert gallery.query(unit([[0, 0.1, 1]]), 1)[0][0].sku != "water"
    gallery.add_sku("water", REFS[4:])
    assert gallery.query(unit([[0, 0.1, 1]]), 1)[0][0].sku == "water"
    assert gallery.query(unit([[1, 0, 0]]), 1) == before
    gallery.save(tmp_path / "gallery")
    meta = json.loads((tmp_path / "gallery" / "gallery.json").read_text())
    assert (
        meta["skus"] == ["cola", "lemonade", "water"]
        and meta["dim"] == 3
        and meta["metric"] == "cosine"
    )
    assert meta["embedder_sha256"] == "abc" and meta["references"] == [2, 2, 1]
    loaded = Gallery.load(tmp_path / "gallery", embedder_sha256="abc")
    assert loaded.query(unit([[0, 0.1, 1]]), 2) == gallery.query(unit([[0, 0.1, 1]]), 2)
    with pytest.raises(VigilError, match="built by embedder abc, not def"):
        Gallery.load(tmp_path / "gallery", embedder_sha256="def")


def test_a_sidecar_that_disagrees_with_the_index_is_refused(tmp_path: Path) -> None:
    build_gallery(REFS, NAMES, 3, "cosine", "Flat", "abc").save(tmp_path / "g")
    meta = json.loads((tmp_path / "g" / "gallery.json").read_text())
    meta["references"] = [2, 2, 2]
    (tmp_path / "g" / "gallery.json").write_text(json.dumps(meta))
    with pytest.raises(VigilError, match="the index holds 5 vectors"):
        Gallery.load(tmp_path / "g")
    with pytest.raises(VigilError, match="the gallery is empty"):
        Gallery(3).query(REFS, 1)
