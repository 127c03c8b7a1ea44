"""The embedder in ONNX: embeddings within cosine 0.999 of PyTorch's, and the gallery's top-1 unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from tests.sku_helpers import TINY_BACKBONE, shelves

from vigil.sku.backbone import build_embedder, embed
from vigil.sku.crops import NO_JITTER, crops_of_items
from vigil.sku.gallery import build_gallery
from vigil.sku.onnx_parity import INPUT, export_onnx, parity


def test_onnx_embedder_matches_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_embedder(16, TINY_BACKBONE).eval()
    images, items = shelves("ABCD", 6, seed=1)
    crops = crops_of_items(".", items, 32, NO_JITTER, np.random.default_rng(0), images)
    gallery = build_gallery(
        embed(model, crops).numpy(), [i.sku for i in items], 16, "cosine", "Flat", "x"
    )
    path = export_onnx(model, tmp_path / "embedder.onnx", 32)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == [INPUT] and len(graph.output) == 1
    report = parity(model, path, crops, gallery, min_cosine=0.999)
    assert report["passed"] and report["cosine_min"] >= 0.999 and report["top1_changed"] == 0
    assert report["crops"] == len(crops)


def test_parity_fails_for_another_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_embedder(16, TINY_BACKBONE).eval()
    torch.manual_seed(1)
    other = build_embedder(16, TINY_BACKBONE).eval()
    images, items = shelves("ABCD", 6, seed=1)
    crops = crops_of_items(".", items, 32, NO_JITTER, np.random.default_rng(0), images)
    gallery = build_gallery(
        embed(model, crops).numpy(), [i.sku for i in items], 16, "cosine", "Flat", "x"
    )
    report = parity(
        model, export_onnx(other, tmp_path / "other.onnx", 32), crops, gallery, min_cosine=0.999
    )
    assert not report["passed"] and report["cosine_min"] < 0.999
