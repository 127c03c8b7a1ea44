"""TensorRT (FP16 engine): only where `tensorrt` imports and CUDA is present; elsewhere recorded skipped.

No engine is faked: `unavailable()` gives the reason and the stage writes `{"status": "skipped", "reason": …}`.
"""

from __future__ import annotations

from pathlib import Path

from vigil.export.exporter import ultralytics_export

NAME = "tensorrt"


def unavailable() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return (
            f"tensorrt not importable ({exc}); its libraries have no wheel for this machine "
            "and engine builds need CUDA"
        )
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device: TensorRT engines are built and run on an NVIDIA GPU"
    return None


def export_engine(weights: Path, out: Path, *, imgsz: int) -> Path:
    """FP16 TensorRT engine through ultralytics' exporter (needs a GPU; see `unavailable`)."""
    return ultralytics_export(weights, out, format="engine", imgsz=imgsz, half=True, device=0)
