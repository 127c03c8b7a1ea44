"""LoRA adapters on a teacher's attention projections: frozen base, adapter-only save, checked base, merge.

Only the adapters train (and, when asked, the detection heads: a new domain may need their
calibration), so a fine-tune moves about 1 % of the weights and its artefact is a few MB. The
trainable share is computed from the wrapped model itself and printed, never assumed.

An adapter is only meaningful on the exact weights it was trained on, so the adapter folder holds,
beside peft's own `adapter_config.json` / `adapter_model.safetensors`, `vigil_base.json`: the base
folder and the sha256 of each of its weight files. Attaching it to any other base is refused with
one line naming the file whose hash differs. `merge` folds the adapters in (peft's
`merge_and_unload`) and writes a plain transformers folder, loadable with no peft at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vigil.atomic import atomic_dir, write_json_atomic
from vigil.data.hashing import sha256_file
from vigil.errors import VigilError
from vigil.teachers.loading import Family, load_teacher, read_family, weight_files

BASE_RECORD = "vigil_base.json"
ADAPTER_CONFIG = "adapter_config.json"
# the attention projections of each family: OWLv2's CLIP towers, and Grounding DINO's decoder and
# text/image cross-attention (q/k/v_proj) plus its deformable attention's value projection
ATTENTION = {
    Family.OWLV2: ("q_proj", "k_proj", "v_proj"),
    Family.GROUNDING_DINO: ("q_proj", "k_proj", "v_proj", "value_proj"),
}
HEADS = {
    Family.OWLV2: ("class_head", "box_head", "objectness_head"),
    Family.GROUNDING_DINO: ("bbox_embed",),
}


@dataclass(frozen=True)
class LoraSettings:
    """The adapters: rank, scale, dropout, the module names they wrap (None = the family's attention)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] | None = None
    train_heads: bool = False

    def __post_init__(self) -> None:
        if self.r < 1:
            raise VigilError("the LoRA rank must be at least 1", field="r")
        if self.alpha <= 0:
            raise VigilError("the LoRA alpha must be positive", field="alpha")
        if not 0 <= self.dropout < 1:
            raise VigilError("the LoRA dropout must be in [0, 1)", field="dropout")


@dataclass(frozen=True)
class TrainableShare:
    """How much of a model trains."""

    trainable: int
    total: int

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def line(self) -> str:
        return (
            f"trainable {self.trainable:,} of {self.total:,} parameters ({100 * self.share:.3f} %)"
        )


def trainable_share(model: Any) -> TrainableShare:
    """Trainable and total parameter counts of `model` (a shared tensor counted once)."""
    seen: dict[int, Any] = {}
    for param in model.parameters():
        seen.setdefault(id(param), param)
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return TrainableShare(trainable, sum(p.numel() for p in seen.values()))


def target_modules(model: Any, family: Family, targets: Sequence[str] | None) -> list[str]:
    """The module names to wrap; one the model does not have is an error naming it."""
    import torch

    names = list(targets) if targets else list(ATTENTION[family])
    linear = {
        n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
    }
    missing = [n for n in names if n not in linear]
    if missing:
        raise VigilError(
            f"the model has no linear module named {missing[0]!r}",
            field="targets",
            hint=f"its attention projections are e.g. {', '.join(ATTENTION[family])}",
        )
    return names


def wrap(model: Any, family: Family, settings: LoraSettings) -> tuple[Any, TrainableShare]:
    """`model` with LoRA adapters (base frozen) and its trainable share."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target_modules(model, family, settings.targets),
        modules_to_save=list(HEADS[family]) if settings.train_heads else None,
        bias="none",
    )
    wrapped = get_peft_model(model, config)
    return wrapped, trainable_share(wrapped)


def base_digest(base: Path) -> dict[str, str]:
    """sha256 of each weight file of the base folder, by file name."""
    return {path.name: sha256_file(path)[0] for path in weight_files(Path(base))}


def save_adapter(wrapped: Any, base: Path, out: Path, settings: LoraSettings) -> Path:
    """Write only the adapters (peft's save) and the base they belong to; the folder appears whole."""
    base = Path(base)
    with atomic_dir(Path(out)) as tmp:
        wrapped.save_pretrained(tmp)
        write_json_atomic(
            tmp / BASE_RECORD,
            {
                "base": str(base.resolve()),
                "family": read_family(base).value,
                "sha256": base_digest(base),
                "lora": {
                    **asdict(settings),
                    "targets": list(wrapped.peft_config["default"].target_modules),
                },
            },
        )
    return Path(out)


def check_base(adapter: Path, base: Path) -> dict[str, Any]:
    """The adapter's record, once the base folder's weights are the ones it was trained on."""
    adapter, base = Path(adapter), Path(base)
    if not (adapter / ADAPTER_CONFIG).is_file():
        raise VigilError(
            f"{ADAPTER_CONFIG} is missing: not an adapter folder",
            path=adapter,
            hint="write one with `vigil teacher lora`",
        )
    try:
        record = json.loads((adapter / BASE_RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        raise VigilError(
            f"{BASE_RECORD} is missing or unreadable: the adapter's base is unknown",
            path=adapter,
            hint="save adapters with `vigil teacher lora`, which records the base's sha256",
        ) from None
    expected: dict[str, str] = record.get("sha256") or {}
    found = base_digest(base)
    if found != expected:
        name = next(
            (n for n in sorted({*found, *expected}) if found.get(n) != expected.get(n)), "?"
        )
        raise VigilError(
            f"the adapter was not trained on this base: {name} has sha256 "
            f"{(found.get(name) or 'none')[:12]}…, the adapter expects {(expected.get(name) or 'none')[:12]}…",
            path=base,
            hint=f"give the base it was made from (recorded: {record.get('base')})",
        )
    return dict(record)


def attach_adapter(model: Any, base: Path, adapter: Path) -> Any:
    """`model` (loaded from `base`) with the adapter of `adapter` attached, once its base is checked."""
    from peft import PeftModel

    check_base(adapter, base)
    return PeftModel.from_pretrained(model, str(adapter), is_trainable=False)


def merge(base: Path, adapter: Path, out: Path) -> Path:
    """Fold the adapter into the base and write a plain model folder (model + processor) at `out`."""
    teacher = load_teacher(Path(base), Path(adapter))
    merged = teacher.model.merge_and_unload()
    with atomic_dir(Path(out)) as tmp:
        merged.save_pretrained(tmp)
        teacher.processor.save_pretrained(tmp)
    return Path(out)
