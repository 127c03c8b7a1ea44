"""The runnable engines behind `vigil predict` and the export stage: PyTorch and ONNX Runtime.

Each loads one file and exposes `forward` (the raw head output) and `set_threads`; everything before
and after the forward pass is `vigil.export.pipeline`. CoreML (macOS only) and TensorRT (CUDA only)
are not engines on this machine; see their format modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import VigilError

ENGINES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")


class TorchEngine:
    """An ultralytics checkpoint's fused PyTorch module on the CPU.

    Built from the checkpoint dict (`vigil.models.trust` decides whether and how a file is unpickled),
    not through `YOLO(path)`, which would unpickle the file again with no restriction.
    """

    name = "torch"

    def __init__(self, path: Path, checkpoint: dict[str, Any] | None = None) -> None:
        from vigil.models.trust import load_pipeline_checkpoint

        ckpt = checkpoint if checkpoint is not None else load_pipeline_checkpoint(Path(path))
        model = ckpt.get("ema") or ckpt.get("model")
        names = getattr(model, "names", None)
        if not hasattr(model, "fuse") or not isinstance(names, (dict, list)):
            raise VigilError(
                "not an ultralytics detector checkpoint (no model with class names)", path=path
            )
        self.names: dict[int, str] = (
            dict(names) if isinstance(names, dict) else dict(enumerate(names))
        )
        args = ckpt.get("train_args")
        imgsz = args.get("imgsz") if isinstance(args, dict) else None
        self.imgsz: int | None = (
            imgsz if isinstance(imgsz, int) and not isinstance(imgsz, bool) else None
        )
        self.module = prepare_module(model)

    def forward(self, tensor: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(tensor))
        return (out[0] if isinstance(out, (tuple, list)) else out).numpy()

    def set_threads(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)


def prepare_module(model: Any) -> Any:
    """FP32, fused, eval mode, with the compatibility updates ultralytics' own loader applies."""
    import torch

    model = model.float()
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = True
        elif isinstance(module, torch.nn.Upsample) and not hasattr(
            module, "recompute_scale_factor"
        ):
            module.recompute_scale_factor = None
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    return model.fuse(verbose=False).eval()


class OnnxEngine:
    """An ONNX file under ONNX Runtime's CPU provider; a thread count change rebuilds the session."""

    def __init__(self, path: Path, name: str = "onnx", threads: int = 0) -> None:
        if not Path(path).is_file():
            raise VigilError("ONNX file not found", path=path, hint="run the export stage first")
        self.name = name
        self.path = Path(path)
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0 = onnxruntime's default (all cores)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except (
            Exception
        ) as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, …) on a bad file
            first = str(exc).strip().splitlines()
            raise VigilError(
                f"not a loadable ONNX model ({first[0][:200] if first else type(exc).__name__})",
                path=self.path,
                hint="give an ONNX file written by the export stage",
            ) from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise VigilError(
                "not an image detector: it should take one (1, 3, H, W) input", path=self.path
            )
        self.input = inputs[0].name

    def forward(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: tensor})[0]

    @property
    def metadata(self) -> dict[str, str]:
        """The file's metadata_props (ultralytics' names, imgsz, …; `vigil.calibration`)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def imgsz(self) -> int | None:
        """The square input size the file fixes, or None when its input size is dynamic."""
        height, width = self.session.get_inputs()[0].shape[-2:]
        return width if isinstance(width, int) and width == height else None


def open_engine(
    kind: str, path: Path, *, trust_pickle: bool = False, repo: Path = Path(".")
) -> Any:
    """The engine `kind` (one of ENGINES) over a file a user named.

    A PyTorch file is unpickled only when `vigil.models.trust` vouches for it (a pipeline output of
    `repo`, or the pinned pretrained checkpoint) or `trust_pickle` says the user does.
    """
    if kind == "torch":
        from vigil.models.trust import load_user_checkpoint

        return TorchEngine(
            path, load_user_checkpoint(Path(path), repo=repo, trust_pickle=trust_pickle)
        )
    if kind in ("onnx", "onnx-int8"):
        return OnnxEngine(path, kind)
    raise VigilError(
        f"unknown engine {kind!r}", field="--engine", hint=f"choose from {', '.join(ENGINES)}"
    )
