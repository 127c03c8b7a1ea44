"""A tiny random Depth Anything model saved to a folder (no weights exist in any registry), for the depth path."""

from __future__ import annotations

from pathlib import Path


def tiny_depth_model(folder: Path) -> Path:
    """save_pretrained a ~40k-parameter DepthAnythingForDepthEstimation whose output is positive and varies."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=56,
        patch_size=14,
        out_features=["stage1", "stage2"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        fusion_hidden_size=16,
        neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1],
        head_hidden_size=8,
        patch_size=14,
    )
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(config).eval()
    # random init gives a near-constant map: widen the weights, and lift the last ReLU off zero
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if weight.dim() > 1:
                weight.normal_(0.0, 0.5 if "backbone" in name else 1.0 / weight[0].numel() ** 0.5)
        model.head.conv3.bias.fill_(1.0)
    model.save_pretrained(folder)
    return folder
