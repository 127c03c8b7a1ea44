"""ONNX (FP32) through ultralytics' own exporter; run by ONNX Runtime (`vigil.export.engines.OnnxEngine`)."""

from __future__ import annotations

from pathlib import Path

from vigil.export.exporter import ultralytics_export

NAME = "onnx"


def unavailable() -> str | None:
    """Why this format cannot be built here (None: it can)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"onnx / onnxruntime not importable: {exc}"
    return None


def export_onnx(weights: Path, out: Path, *, imgsz: int, opset: int | None, simplify: bool) -> Path:
    """Export `weights` to `out` (static 1×3×imgsz×imgsz input, FP32); the checkpoint's folder is not touched."""
    return ultralytics_export(
        weights,
        out,
        format="onnx",
        imgsz=imgsz,
        opset=opset,
        simplify=simplify,
        dynamic=False,
        half=False,
        device="cpu",
    )
