"""ONNX (FP32) through ultralytics' own exporter; run by ONNX Runtime (`vigil.export.engines.OnnxEngine`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from vigil.errors import VigilError

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
    from vigil.models.yolo import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO

    if not Path(weights).is_file():
        raise VigilError("model checkpoint not found", path=weights, hint="run the stage that writes it")
    with tempfile.TemporaryDirectory(prefix="vigil-onnx-") as tmp:
        local = Path(tmp) / "model.pt"
        shutil.copyfile(weights, local)
        written = YOLO(str(local), task="detect").export(format="onnx", imgsz=imgsz, opset=opset, simplify=simplify,
                                                         dynamic=False, half=False, device="cpu", verbose=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), out)
    return out
