"""The embedder's training loop: it learns, it is seeded, it resumes to the same weights, and the
gallery names an SKU it never trained on (open set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.sku_helpers import shelves, tiny_config

from vigil.errors import VigilError
from vigil.sku.backbone import embed
from vigil.sku.crops import NO_JITTER, crops_of_items
from vigil.sku.evaluate import sku_report
from vigil.sku.gallery import build_gallery
from vigil.sku.train import CHECKPOINT, train_embedder

IMAGES, ITEMS = shelves("ABCD", 16, seed=0)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)  # CPU kernels then reduce in one fixed order


class Stop(Exception):
    pass


def weights(result: object) -> list[torch.Tensor]:
    return [t.clone() for t in result.embedder.state_dict().values()]  # type: ignore[attr-defined]


def test_training_learns_and_writes_curves(tmp_path: Path) -> None:
    val_images, val_items = shelves("ABCD", 4, seed=5, prefix="val")
    result = train_embedder(
        ITEMS,
        tiny_config(3),
        tmp_path / "run",
        images={**IMAGES, **val_images},
        val_items=val_items,
        live_dir=tmp_path / "live",
    )
    history = result.metrics["history"]
    assert len(history) == 3 and result.skus == ["A", "B", "C", "D"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert result.metrics["val_top1"] >= 0.75  # nearest ArcFace centre, 4 SKUs (chance: 0.25)
    assert (tmp_path / "run" / CHECKPOINT).is_file()
    tsv = (tmp_path / "live" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert len(tsv) == 4  # header + one row per epoch


def test_a_run_stopped_between_epochs_resumes_to_the_same_weights(tmp_path: Path) -> None:
    whole = train_embedder(ITEMS, tiny_config(3), tmp_path / "whole", images=IMAGES)

    def stop_after_first(epoch: int, row: dict[str, float]) -> None:
        if epoch == 0:
            raise Stop

    with pytest.raises(Stop):
        train_embedder(
            ITEMS, tiny_config(3), tmp_path / "parts", images=IMAGES, on_epoch_end=stop_after_first
        )
    resumed = train_embedder(ITEMS, tiny_config(3), tmp_path / "parts", images=IMAGES)
    assert resumed.metrics["resumed_from"] == 1
    for a, b in zip(weights(whole), weights(resumed), strict=True):
        assert torch.equal(a, b)
    other = train_embedder(ITEMS, tiny_config(3, seed=1), tmp_path / "parts", images=IMAGES)
    assert other.metrics["resumed_from"] == 0  # another seed is another run: started afresh
    assert any(not torch.equal(a, b) for a, b in zip(weights(whole), weights(other), strict=True))


def test_open_set_a_sku_only_in_the_gallery_is_found(tmp_path: Path) -> None:
    result = train_embedder(ITEMS, tiny_config(3), tmp_path / "run", images=IMAGES)
    ref_images, refs = shelves("ABCDE", 12, seed=2, prefix="ref")
    query_images, queries = shelves("E", 4, seed=3, prefix="query")
    rng = np.random.default_rng(0)
    ref_crops = crops_of_items(".", refs, 32, NO_JITTER, rng, ref_images)
    gallery = build_gallery(
        embed(result.embedder, ref_crops).numpy()[[r.sku != "E" for r in refs]],
        [r.sku for r in refs if r.sku != "E"],
        16,
        "cosine",
        "Flat",
        "test",
    )
    e_refs = ref_crops[[r.sku == "E" for r in refs]]
    gallery.add_sku("E", embed(result.embedder, e_refs).numpy())  # no retraining
    q = embed(
        result.embedder, crops_of_items(".", queries, 32, NO_JITTER, rng, query_images)
    ).numpy()
    report = sku_report([i.sku for i in queries], gallery.scores(q), gallery.skus)
    assert "E" not in result.skus and report["per_sku"]["E"]["top1"] >= 0.9


def test_one_sku_cannot_be_trained(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="ArcFace needs at least two"):
        train_embedder(
            [i for i in ITEMS if i.sku == "A"], tiny_config(1), tmp_path / "r", images=IMAGES
        )


def test_a_non_finite_loss_stops_training(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match=r"the loss is (nan|inf) at epoch 0"):
        train_embedder(ITEMS, tiny_config(1, lr=1e30), tmp_path / "r", images=IMAGES)
    with pytest.raises(VigilError, match="lr must be a positive number"):
        tiny_config(1, lr=float("nan"))
