"""ONNX INT8: ONNX Runtime static quantization (QDQ, per-channel) calibrated on val images.

Quantizing every node gives mAP 0: the detect head concatenates box coordinates in pixels with
class scores in [0, 1] and one int8 scale cannot hold both. `excluded_nodes` keeps the head's
post-processing in float, found from the graph by name (the head = the module that produces the
graph's output; its branch convolutions live under `cv2.*` / `cv3.*`), never by node index:

- "none": quantize everything;
- "post": the head's post-processing (reshapes, concat, DFL, sigmoid, box decoding) stays float;
- "post+last": also the last 1×1 convolution of every head branch (the raw box / class logits);
- "head": the whole detect head stays float.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vigil.errors import VigilError

NAME = "onnx_int8"
EXCLUDE_MODES: tuple[str, ...] = ("none", "post", "post+last", "head")
METHODS: tuple[str, ...] = ("minmax", "entropy", "percentile")
_BRANCH = re.compile(r"/cv[23]\.\d+/")
_LAST_CONV = re.compile(r"/cv[23]\.\d+/cv[23]\.\d+\.2/Conv$")


def unavailable() -> str | None:
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime.quantization not importable: {exc}"
    return None


def head_prefix(model: object) -> str:
    """The name prefix of the module producing the graph's output, e.g. `/model.22/`."""
    graph = model.graph  # type: ignore[attr-defined]
    output = graph.output[0].name
    producer = next((n for n in graph.node if output in n.output), None)
    match = re.match(r"^(/model\.\d+/)", producer.name if producer is not None else "")
    if match is None:
        raise VigilError(
            f"cannot find the detect head: the output {output!r} is not made by a /model.N/ node",
            hint="export with ultralytics' ONNX exporter (node names are kept)",
        )
    return match.group(1)


def excluded_nodes(model: object, mode: str) -> list[str]:
    """Names of the nodes kept in float for `mode` (one of EXCLUDE_MODES)."""
    if mode not in EXCLUDE_MODES:
        raise VigilError(
            f"unknown exclusion {mode!r}",
            field="export.int8.recipes",
            hint=f"choose from {', '.join(EXCLUDE_MODES)}",
        )
    if mode == "none":
        return []
    prefix = head_prefix(model)
    head = [n.name for n in model.graph.node if n.name.startswith(prefix)]  # type: ignore[attr-defined]
    if mode == "head":
        return head
    post = [name for name in head if not _BRANCH.search(name)]
    return post + (
        [name for name in head if _LAST_CONV.search(name)] if mode == "post+last" else []
    )


def collect_ranges(fp32: Path, reader: object, method: object, cache: Path, work: Path) -> None:
    """Activation ranges of `fp32` on the reader's images, saved to `cache` for `quantize_static`.

    Done here rather than inside `quantize_static` because it cannot pass histogram sizes through:
    its Entropy calibrator then runs with 128 bins and 128 quantized bins, which leaves a single
    candidate threshold — the min/max — so "Entropy" silently equals MinMax. 2048 bins (TensorRT's
    choice) make it choose.
    """
    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        create_calibrator,
        save_tensors_data,
    )

    options = (
        {"num_bins": 2048, "num_quantized_bins": 128} if method == CalibrationMethod.Entropy else {}
    )
    calibrator = create_calibrator(
        Path(fp32),
        None,
        augmented_model_path=str(work / "augmented.onnx"),
        calibrate_method=method,
        extra_options=options,
    )
    calibrator.collect_data(reader)
    save_tensors_data(calibrator.compute_data(), cache)


class _Images:
    """onnxruntime's CalibrationDataReader over preprocessed tensors."""

    def __init__(self, input_name: str, tensors: Sequence[np.ndarray]) -> None:
        self._feeds = iter([{input_name: t} for t in tensors])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_int8(
    fp32: Path,
    out: Path,
    tensors: Sequence[np.ndarray],
    *,
    method: str = "minmax",
    exclude: str = "post",
    per_channel: bool = True,
) -> dict[str, object]:
    """Write the INT8 model of `fp32` to `out`, calibrated on `tensors` (preprocessed images); what was done."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise VigilError(
            f"unknown calibration method {method!r}",
            field="export.int8.recipes",
            hint=f"choose from {', '.join(METHODS)}",
        )
    if not tensors:
        raise VigilError("no calibration images", field="export.int8.calibration_images")
    model = onnx.load(str(fp32))
    skip = excluded_nodes(model, exclude)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vigil-calib-") as tmp:
        cache = Path(tmp) / "ranges.json"
        collect_ranges(
            fp32, _Images(model.graph.input[0].name, tensors), methods[method], cache, Path(tmp)
        )
        quantize_static(
            str(fp32),
            str(out),
            None,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=skip,
            calibration_cache_path=str(cache),
        )
    return {
        "method": method,
        "exclude": exclude,
        "excluded_nodes": len(skip),
        "calibration_images": len(tensors),
        "per_channel": per_channel,
        "format": "QDQ",
        "activations": "uint8",
        "weights": "int8",
    }
