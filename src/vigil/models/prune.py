"""Structured pruning of a YOLOv8 checkpoint down to a smaller YOLOv8 scale (e.g. s → n) with torch-pruning.

The student of the `distill` stage starts from the fine-tuned teacher with channels removed, so it
starts knowing the task; a random YOLOv8n learns next to nothing in a CPU budget.

How it works:
1. ultralytics' `C2f` splits one convolution's output in two (`chunk`), which a dependency graph
   cannot follow, so each C2f is first rewritten as `SplitC2f`: the same maths with the two halves
   as two convolutions (`cv0`, `cv1`), weights copied exactly.
2. torch-pruning (`MetaPruner`, L2 group magnitude, one ratio for every group, no global ranking) then
   removes the same share of channels everywhere, so the pruned shapes depend only on the
   architecture and the ratio, never on the weights: pruning two checkpoints of one architecture
   gives two models of one shape. The detect head keeps its box-regression width (ultralytics sizes
   it `max(16, c/4, 4*reg_max)`, 64 at both scales) and its output convolutions.
3. Each `SplitC2f` is folded back into a plain `C2f`; the state dict is checked name by name and
   shape by shape against the target yaml built fresh (so the result is an ordinary checkpoint of
   that yaml, loadable by ultralytics' own `model.load`); any mismatch is an error, not a warning.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.models.yolo import PATH_ARGS

# ultralytics' yolov8.yaml scales: (depth, width, max channels)
YOLOV8_SCALES = {"n": (0.33, 0.25, 1024), "s": (0.33, 0.50, 1024), "m": (0.67, 0.75, 768),
                 "l": (1.00, 1.00, 512), "x": (1.00, 1.25, 512)}


@dataclass(frozen=True)
class PruneReport:
    """What pruning did: the ratio, parameter counts before and after, and the target yaml."""

    source_params: int
    pruned_params: int
    ratio: float
    target: str

    def as_dict(self) -> dict[str, Any]:
        return {"source_params": self.source_params, "pruned_params": self.pruned_params,
                "kept": round(self.pruned_params / self.source_params, 5), "channel_ratio": self.ratio,
                "target": self.target}


def yolov8_scale(yaml_name: str) -> str:
    """'yolov8n.yaml' → 'n'; anything else is refused (only the YOLOv8 family is mapped)."""
    stem = Path(yaml_name).stem
    if not (stem.startswith("yolov8") and len(stem) == 7 and stem[-1] in YOLOV8_SCALES):
        raise VigilError(f"cannot prune to {yaml_name!r}: only yolov8{{n,s,m,l,x}}.yaml targets are mapped",
                         field="distill.model")
    return stem[-1]


def model_scale(yaml: dict[str, Any]) -> tuple[float, float, int]:
    """(depth, width, max channels) of a built model, from its yaml dict (`scale` + `scales`, or the multiples)."""
    if "scale" in yaml and yaml["scale"] in (yaml.get("scales") or {}):
        depth, width, top = yaml["scales"][yaml["scale"]]
        return float(depth), float(width), int(top)
    if "depth_multiple" in yaml and "width_multiple" in yaml:
        return float(yaml["depth_multiple"]), float(yaml["width_multiple"]), int(yaml.get("max_channels", 1024))
    raise VigilError("the checkpoint's yaml names no scale and no width_multiple; cannot tell its width")


def channel_ratio(source: tuple[float, float, int], target_yaml: str) -> float:
    """Share of channels to remove to go from a model of scale `source` to `target_yaml` (s → n: 0.5)."""
    depth, width, top = YOLOV8_SCALES[yolov8_scale(target_yaml)]
    if (depth, top) != (source[0], source[2]):
        raise VigilError(f"cannot prune depth {source[0]} / max channels {source[2]} to {target_yaml} "
                         f"(depth {depth}, max channels {top}): pruning removes channels, not layers",
                         field="distill.model", hint="pick a target of the same depth (s → n)")
    if width >= source[1]:
        raise VigilError(f"{target_yaml} (width {width}) is not narrower than the source (width {source[1]})",
                         field="distill.model")
    return 1.0 - width / source[1]


def _split_c2f_class() -> type:
    import torch
    from torch import nn

    class SplitC2f(nn.Module):
        """C2f with its `chunk(2)` spelled as two convolutions, which a pruning graph can follow."""

        def __init__(self, c2f: Any) -> None:  # an ultralytics C2f: attributes built at run time
            super().__init__()
            from ultralytics.nn.modules.conv import Conv

            c, conv = c2f.c, c2f.cv1.conv
            self.cv0 = Conv(conv.in_channels, c, conv.kernel_size, conv.stride)
            self.cv1 = Conv(conv.in_channels, c, conv.kernel_size, conv.stride)
            for half, dst in ((slice(0, c), self.cv0), (slice(c, 2 * c), self.cv1)):
                dst.conv.weight.data = conv.weight.data[half].clone()
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(dst.bn, name).data = getattr(c2f.cv1.bn, name).data[half].clone()
                dst.bn.eps, dst.bn.momentum = c2f.cv1.bn.eps, c2f.cv1.bn.momentum
                dst.act = c2f.cv1.act
            self.cv2, self.m = c2f.cv2, c2f.m
            self.f, self.i = c2f.f, c2f.i  # ultralytics' graph bookkeeping (and `type`, which shadows a method)
            self.__dict__["type"] = c2f.type
            self.train(c2f.training)  # new layers start in train mode: a forward would move their BN statistics

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = [self.cv0(x), self.cv1(x)]
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    return SplitC2f


def split_c2f(model: Any) -> None:
    """Replace every ultralytics C2f in `model.model` by its two-convolution twin, in place."""
    from ultralytics.nn.modules.block import C2f

    split = _split_c2f_class()
    for i, layer in enumerate(model.model):
        if type(layer) is C2f:
            model.model[i] = split(layer)


def fold_c2f(model: Any) -> None:
    """Turn every SplitC2f back into a plain C2f (cv0 and cv1 concatenated into cv1), in place."""
    import torch
    from ultralytics.nn.modules.block import C2f

    for i, layer in enumerate(model.model):
        if type(layer).__name__ != "SplitC2f":
            continue
        c = layer.cv0.conv.out_channels
        if layer.cv1.conv.out_channels != c:
            raise VigilError(f"layer {i}: the two C2f halves were pruned to {c} and {layer.cv1.conv.out_channels}")
        plain: Any = C2f(layer.cv0.conv.in_channels, layer.cv2.conv.out_channels, n=len(layer.m))
        plain.c, plain.m, plain.cv2 = c, layer.m, layer.cv2
        plain.cv1.conv = torch.nn.Conv2d(layer.cv0.conv.in_channels, 2 * c, layer.cv0.conv.kernel_size,
                                         layer.cv0.conv.stride, layer.cv0.conv.padding, bias=False)
        plain.cv1.bn = torch.nn.BatchNorm2d(2 * c, eps=layer.cv0.bn.eps, momentum=layer.cv0.bn.momentum)
        plain.cv1.conv.weight.data = torch.cat([layer.cv0.conv.weight.data, layer.cv1.conv.weight.data])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(plain.cv1.bn, name).data = torch.cat([getattr(layer.cv0.bn, name).data,
                                                          getattr(layer.cv1.bn, name).data])
        plain.f, plain.i, plain.type, plain.np = layer.f, layer.i, layer.type, sum(
            p.numel() for p in plain.parameters())
        model.model[i] = plain.train(layer.training)


def _kept_layers(model: Any) -> list[Any]:
    """Layers whose output channels stay: the head's box branch and every output convolution."""
    head = model.model[-1]
    kept: list[Any] = [head.dfl] if hasattr(head, "dfl") else []
    for branch in head.cv2:  # box regression: 4*reg_max wide at every scale
        kept.extend(branch)
    for branch in head.cv3:  # class branch: hidden layers shrink, the nc-wide output stays
        kept.append(branch[-1])
    return kept


def prune_detection_model(model: Any, ratio: float, imgsz: int = 320) -> Any:
    """A pruned deep copy of an ultralytics DetectionModel (C2f split, pruned, folded back)."""
    import torch
    import torch_pruning as tp

    pruned = copy.deepcopy(model).float().eval()
    for p in pruned.parameters():
        p.requires_grad_(True)
    split_c2f(pruned)
    example = torch.zeros(1, 3, imgsz, imgsz)
    pruner = tp.pruner.MetaPruner(pruned, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=ratio, global_pruning=False, ignored_layers=_kept_layers(pruned))
    pruner.step()
    fold_c2f(pruned)
    for p in pruned.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        pruned(example)  # the folded graph still runs end to end
    return pruned


def check_shapes(model: Any, target: Any, skip: Sequence[str] = ()) -> None:
    """Every state-dict entry of `target` exists in `model` with the same shape (names in `skip` excepted)."""
    have = model.state_dict()
    wrong = [f"{name}: {tuple(have[name].shape) if name in have else 'missing'} != {tuple(t.shape)}"
             for name, t in target.state_dict().items()
             if not any(name.startswith(s) for s in skip) and (name not in have or have[name].shape != t.shape)]
    if wrong:
        raise VigilError(f"pruned model does not match the target yaml in {len(wrong)} tensors: "
                         + "; ".join(wrong[:5]))


def prune_checkpoint(source: Path, target_yaml: str, out: Path, imgsz: int = 320) -> PruneReport:
    """Prune the checkpoint `source` to the shape of `target_yaml` and write it as an ordinary checkpoint.

    The classifier outputs keep the source's class count; ultralytics' `model.load` (by name and shape)
    skips them when the source's classes differ from the dataset's.
    """
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    if not Path(source).is_file():
        raise VigilError("checkpoint to prune not found", path=source)
    model: Any = YOLO(str(source)).model
    ratio = channel_ratio(model_scale(model.yaml), target_yaml)
    pruned = prune_detection_model(model, ratio, imgsz)
    target: Any = DetectionModel(target_yaml, nc=model.model[-1].nc, verbose=False)
    check_shapes(pruned, target)
    target.load_state_dict(pruned.state_dict())
    target.names = model.names
    target.args = {k: v for k, v in (getattr(model, "args", None) or {}).items() if k not in PATH_ARGS}
    export_checkpoint_model(target, out, {"pruned_from": Path(source).name, "target": target_yaml})
    return PruneReport(sum(p.numel() for p in model.parameters()), sum(p.numel() for p in target.parameters()),
                       round(ratio, 5), target_yaml)


def export_checkpoint_model(model: Any, out: Path, meta: dict[str, Any]) -> None:
    """Write `model` as an ultralytics-style checkpoint ({'model': …}) atomically."""
    import io

    import torch

    from vigil.atomic import write_bytes_atomic

    buffer = io.BytesIO()
    torch.save({"model": copy.deepcopy(model).half(), "train_args": {}, "vigil": meta, "epoch": -1}, buffer)
    write_bytes_atomic(out, buffer.getvalue())
