"""The embedder in ONNX, re-checked against PyTorch as the detector's exports are.

One image input (`images`, N × 3 × S × S, normalised as `backbone.to_tensor` does; N dynamic) and
one output (`embeddings`, unit vectors). Parity is what the gallery cares about: the cosine between
the two engines' embeddings of the same crops (each must reach `min_cosine`), and the gallery's
top-1 SKU for each crop, which must not change.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vigil.atomic import write_bytes_atomic
from vigil.sku.backbone import to_tensor
from vigil.sku.gallery import Gallery

INPUT, OUTPUT = "images", "embeddings"


def export_onnx(model: nn.Module, path: Path, input_size: int, opset: int = 17) -> Path:
    """Write `model` to ONNX at `path` (atomically), with a dynamic batch dimension."""
    import tempfile

    model.eval()
    example = torch.zeros(1, 3, input_size, input_size)
    with tempfile.TemporaryDirectory() as scratch, torch.no_grad():
        tmp = Path(scratch) / "embedder.onnx"
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=opset,
        )
        data = tmp.read_bytes()
    write_bytes_atomic(Path(path), data)
    return Path(path)


def onnx_embed(path: Path, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    """Embeddings of uint8 crops through ONNX Runtime (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = [
        session.run([OUTPUT], {INPUT: to_tensor(crops[i : i + batch]).numpy()})[0]
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def parity(
    model: nn.Module, onnx_path: Path, crops: np.ndarray, gallery: Gallery, min_cosine: float
) -> dict[str, Any]:
    """Compare PyTorch and ONNX Runtime on `crops`: per-crop cosine and the gallery's top-1 SKU.

    `passed` needs every crop's cosine ≥ `min_cosine` and every top-1 unchanged.
    """
    from vigil.sku.backbone import embed

    began = time.perf_counter()
    torch_emb = embed(model, crops).numpy().astype(np.float64)
    torch_ms = (time.perf_counter() - began) * 1000 / max(1, len(crops))
    began = time.perf_counter()
    onnx_emb = onnx_embed(onnx_path, crops).astype(np.float64)
    onnx_ms = (time.perf_counter() - began) * 1000 / max(1, len(crops))
    norms = np.linalg.norm(torch_emb, axis=1) * np.linalg.norm(onnx_emb, axis=1)
    cosine = (torch_emb * onnx_emb).sum(axis=1) / np.maximum(norms, 1e-12)
    top_torch = [m[0].sku for m in gallery.query(torch_emb, 1)]
    top_onnx = [m[0].sku for m in gallery.query(onnx_emb, 1)]
    changed = sum(a != b for a, b in zip(top_torch, top_onnx, strict=True))
    cos_min = float(cosine.min()) if len(cosine) else 1.0
    return {
        "crops": int(len(crops)),
        "cosine_min": cos_min,
        "cosine_mean": float(cosine.mean()) if len(cosine) else 1.0,
        "min_cosine": float(min_cosine),
        "top1_changed": int(changed),
        "top1_agreement": 1.0 - changed / max(1, len(crops)),
        "torch_ms_per_crop": torch_ms,
        "onnx_ms_per_crop": onnx_ms,
        "passed": bool(cos_min >= min_cosine and changed == 0),
    }
