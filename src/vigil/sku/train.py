"""The embedder's training loop: ArcFace plus batch-hard mining on jittered ground-truth crops.

Seeded end to end: epoch e draws its crops' jitter, its batches and its dropout from (seed, e)
alone, so a run stopped after any epoch and resumed gives the same weights as one that never
stopped (tested on the CPU). After each epoch the whole state (embedder, head, optimiser, history)
is written atomically to `run_dir/last.pt`; a later call with the same fingerprint (config, SKUs,
items, init weights) continues from it, anything else starts afresh. It stops on a non-finite loss
rather than training on. DVCLive curves are optional (`live_dir`), resumed like `models.live`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vigil.atomic import write_bytes_atomic
from vigil.errors import VigilError
from vigil.models.trust import load_checkpoint_bytes
from vigil.sku.arcface import ArcFaceHead
from vigil.sku.backbone import Embedder, build_embedder, to_tensor
from vigil.sku.crops import CropItem, Jitter, crops_of_items
from vigil.sku.mining import batch_hard_loss, look_alike_batches, look_alikes

CHECKPOINT = "last.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on besides its data (the future `classify_train:` params section)."""

    backbone: str  # timm model name (efficientnet_lite0)
    dim: int  # embedding size
    input_size: int  # square crop side in pixels
    epochs: int
    lr: float  # AdamW peak learning rate, cosine-annealed per epoch
    weight_decay: float
    classes_per_batch: int  # P of the P × K batches
    per_class: int  # K: crops of each SKU in a batch (≥ 2, so batch-hard has positives)
    scale: float  # ArcFace s
    margin: float  # ArcFace m (radians)
    mining_weight: float  # weight of the batch-hard term (0 = ArcFace alone)
    mining_margin: float  # cosine margin the batch-hard term asks for
    jitter: Jitter
    seed: int

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.dim < 2 or self.input_size < 8:
            raise VigilError(
                "epochs ≥ 1, dim ≥ 2 and input_size ≥ 8 are needed", field="classify_train"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise VigilError(f"lr must be a positive number, not {self.lr}", field="lr")
        if self.per_class < 2 or self.classes_per_batch < 2:
            raise VigilError(
                "batch-hard mining needs per_class ≥ 2 and classes_per_batch ≥ 2", field="per_class"
            )


@dataclass
class TrainResult:
    embedder: Embedder
    head: ArcFaceHead
    skus: list[str]
    metrics: dict[str, Any]


def fingerprint(
    config: TrainConfig,
    skus: Sequence[str],
    items: Sequence[CropItem],
    init: Mapping[str, torch.Tensor] | None,
) -> str:
    """What a run depends on; `run_dir` is resumed only by a run of the same fingerprint."""
    digest = hashlib.sha256(
        json.dumps(
            {
                "config": dataclasses.asdict(config),
                "skus": list(skus),
                "items": [dataclasses.astuple(i) for i in items],
            },
            sort_keys=True,
        ).encode()
    )
    for key, value in (init or {}).items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _seed_epoch(seed: int, epoch: int) -> np.random.Generator:
    torch.manual_seed(seed * 100_003 + epoch)
    return np.random.default_rng([seed, epoch])


def _lr(config: TrainConfig, epoch: int) -> float:
    return config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))


def _save(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def _resume_state(run_dir: Path, fp: str) -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return None
    state = load_checkpoint_bytes(path.read_bytes(), path, pickle_ok=False)
    return state if state.get("fingerprint") == fp else None


@torch.no_grad()
def centre_top1(
    embedder: Embedder, head: ArcFaceHead, crops: np.ndarray, labels: np.ndarray, batch: int = 64
) -> float:
    """Top-1 of the nearest ArcFace centre (a closed-set check; the gallery is scored in evaluate)."""
    embedder.eval()
    hits = 0
    for i in range(0, len(crops), batch):
        pred = head.cosine(embedder(to_tensor(crops[i : i + batch]))).argmax(dim=1).numpy()
        hits += int((pred == labels[i : i + batch]).sum())
    return hits / max(1, len(crops))


def train_embedder(
    items: Sequence[CropItem],
    config: TrainConfig,
    run_dir: Path,
    *,
    root: Path = Path("."),
    images: Mapping[str, np.ndarray] | None = None,
    init: Mapping[str, torch.Tensor] | None = None,
    val_items: Sequence[CropItem] = (),
    live_dir: Path | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train the embedder on crops of `items` (true boxes), resuming `run_dir` when it holds this run.

    `init`: ImageNet weights mapped by position (`backbone.fetch_imagenet_state`), else random init.
    `images`: decoded images by path (`crops.decode_images`), so no epoch decodes again.
    `val_items`: crops (unjittered) scored each epoch by the nearest ArcFace centre.
    Returns the embedder, the head, the SKU names (label i = skus[i]) and the metrics.
    """
    skus = sorted({item.sku for item in items})
    if len(skus) < 2:
        raise VigilError(
            f"{len(skus)} SKU in the training crops; ArcFace needs at least two", field="skus"
        )
    index = {name: i for i, name in enumerate(skus)}
    labels = np.array([index[item.sku] for item in items], dtype=np.int64)
    unknown = sorted({i.sku for i in val_items} - set(index))
    if unknown:
        raise VigilError(
            f"validation SKUs not in training: {unknown[:5]}",
            field="val",
            hint="score SKUs held out of training through the gallery (open set), not here",
        )
    run_dir = Path(run_dir)
    fp = fingerprint(config, skus, items, init)

    torch.manual_seed(config.seed)
    embedder = build_embedder(config.dim, config.backbone, init)
    head = ArcFaceHead(config.dim, len(skus), config.scale, config.margin)
    params = list(embedder.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    start = 0
    state = _resume_state(run_dir, fp)
    if state is not None:
        embedder.load_state_dict(state["embedder"])
        head.load_state_dict(state["head"])
        optimiser.load_state_dict(state["optimiser"])
        history, start = list(state["history"]), int(state["epoch"])

    val_crops = crops_of_items(
        root, val_items, config.input_size, Jitter(0.0, 0.0), np.random.default_rng(0), images
    )
    val_labels = np.array([index[i.sku] for i in val_items], dtype=np.int64)
    live = _open_live(live_dir, start) if live_dir is not None else None
    try:
        for epoch in range(start, config.epochs):
            row = _train_epoch(
                embedder, head, optimiser, items, labels, config, epoch, root, images
            )
            if len(val_items):
                row["val_top1"] = centre_top1(embedder, head, val_crops, val_labels)
            history.append(row)
            _save(
                run_dir / CHECKPOINT,
                {
                    "fingerprint": fp,
                    "epoch": epoch + 1,
                    "history": history,
                    "embedder": embedder.state_dict(),
                    "head": head.state_dict(),
                    "optimiser": optimiser.state_dict(),
                },
            )
            if live is not None:
                live.step = epoch
                for name, value in row.items():
                    live.log_metric(name, value, plot=True)
                live.next_step()
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    finally:
        if live is not None:
            live.end()
    embedder.eval()
    metrics: dict[str, Any] = {
        "epochs": config.epochs,
        "resumed_from": start,
        "skus": len(skus),
        "crops": len(items),
        "history": history,
        **(history[-1] if history else {}),
    }
    return TrainResult(embedder, head, skus, metrics)


def _open_live(live_dir: Path, start: int) -> Any:
    from dvclive import Live

    from vigil.models.live import truncate_from

    if start:
        truncate_from(live_dir, start)
    return Live(dir=str(live_dir), resume=bool(start), save_dvc_exp=False, dvcyaml=None)


def _train_epoch(
    embedder: Embedder,
    head: ArcFaceHead,
    optimiser: torch.optim.Optimizer,
    items: Sequence[CropItem],
    labels: np.ndarray,
    config: TrainConfig,
    epoch: int,
    root: Path,
    images: Mapping[str, np.ndarray] | None,
) -> dict[str, float]:
    began = time.perf_counter()
    rng = _seed_epoch(config.seed, epoch)
    crops = crops_of_items(root, items, config.input_size, config.jitter, rng, images)
    neighbours = look_alikes(head.centres(), config.classes_per_batch - 1) if epoch > 0 else None
    batches = look_alike_batches(
        labels, config.classes_per_batch, config.per_class, rng, neighbours
    )
    lr = _lr(config, epoch)
    for group in optimiser.param_groups:
        group["lr"] = lr
    embedder.train()
    head.train()
    totals = {"loss": 0.0, "arcface_loss": 0.0, "mining_loss": 0.0}
    hits = seen = 0
    for batch in batches:
        x, y = to_tensor(crops[batch]), torch.as_tensor(labels[batch])
        emb = embedder(x)
        arc = F.cross_entropy(head(emb, y), y)
        mine = batch_hard_loss(emb, y, config.mining_margin)
        loss = arc + config.mining_weight * mine
        if not torch.isfinite(loss):
            raise VigilError(
                f"the loss is {loss.item()} at epoch {epoch}; training stopped",
                field="lr",
                hint="lower the learning rate or the ArcFace scale",
            )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        totals["loss"] += loss.item() * len(batch)
        totals["arcface_loss"] += arc.item() * len(batch)
        totals["mining_loss"] += mine.item() * len(batch)
        hits += int((head.cosine(emb.detach()).argmax(dim=1) == y).sum())
        seen += len(batch)
    row = {name: value / max(1, seen) for name, value in totals.items()}
    row.update(
        {"train_top1": hits / max(1, seen), "lr": lr, "epoch_seconds": time.perf_counter() - began}
    )
    return row
