"""Which PyTorch checkpoints vigil may unpickle, and how: a model file must never run code.

A `.pt` is a pickle, and unpickling can run any code the file holds. So a checkpoint handed to vigil
is loaded only when the pipeline produced it (its md5 is an output in `dvc.lock`) or verified it
(the pinned `pretrained.sha256` of params.yaml), or when the user says so explicitly
(`--trust-pickle`). ONNX holds no code: it is the safe way to hand vigil a model from elsewhere.

Whatever the verdict, loading prefers torch's `weights_only` unpickler, allowing only the classes a
detector checkpoint is made of (torch and ultralytics `nn.Module`s, numpy scalars); a full unpickle is
the fallback only for a trusted file that needs more. The bytes are read once, so the file that was
hashed is the file that is loaded. Every `torch.load` of the project lives here.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vigil.errors import VigilError

MODULE_PREFIXES = ("torch.nn.modules.", "ultralytics.nn.")  # where a checkpoint's nn.Module classes live
SCALAR_NAMES = ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar")
TRUST_FLAG = "--trust-pickle"


@dataclass(frozen=True)
class Digests:
    md5: str
    sha256: str


def digests(data: bytes) -> Digests:
    return Digests(hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def _safe_yaml(path: Path) -> Any:
    """A YAML file's content, or None when it is absent or unreadable (trust then rests on the rest)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None


def pipeline_md5s(repo: Path) -> set[str]:
    """md5 of every file output recorded in `repo/dvc.lock` (folder outputs, `….dir`, are not checkpoints)."""
    lock = _safe_yaml(Path(repo) / "dvc.lock")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    found: set[str] = set()
    for stage in stages.values() if isinstance(stages, dict) else ():
        outs = stage.get("outs") if isinstance(stage, dict) else None
        for out in outs if isinstance(outs, list) else ():
            md5 = out.get("md5") if isinstance(out, dict) else None
            if isinstance(md5, str) and len(md5) == 32:  # a folder's is `<md5>.dir`
                found.add(md5.lower())
    return found


def pinned_sha256(repo: Path) -> str | None:
    """The pretrained checkpoint's pinned sha256 (params.yaml `pretrained.sha256`), if any."""
    params = _safe_yaml(Path(repo) / "params.yaml")
    section = params.get("pretrained") if isinstance(params, dict) else None
    value = section.get("sha256") if isinstance(section, dict) else None
    return value.lower() if isinstance(value, str) else None


def trust_reason(found: Digests, repo: Path) -> str | None:
    """Why a file with these digests may be unpickled, or None when nothing vouches for it."""
    if found.md5 in pipeline_md5s(repo):
        return "a pipeline output (dvc.lock)"
    if found.sha256 == pinned_sha256(repo):
        return "the pinned pretrained checkpoint (params.yaml pretrained.sha256)"
    return None


def _allowed_global(name: str) -> Any:
    """The object a `weights_only` load may build for the pickled global `name`, or None."""
    import numpy as np
    from torch import nn

    module, _, attr = name.rpartition(".")
    if name in SCALAR_NAMES:
        return np.float64(0).__reduce__()[0]
    if name == "numpy.dtype":
        return np.dtype
    if module == "numpy.dtypes":
        obj = getattr(np.dtypes, attr, None)
        return obj if isinstance(obj, type) and issubclass(obj, np.dtype) else None
    if not (module + ".").startswith(MODULE_PREFIXES):
        return None
    try:
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    return obj if isinstance(obj, type) and issubclass(obj, nn.Module) else None


def load_weights_only(data: bytes) -> Any:
    """Unpickle with torch's restricted loader and the detector allow-list; None when the file needs more."""
    import torch

    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception:  # not a torch.save zip archive (legacy format or garbage): no restricted path
        return None
    entries: list[Any] = [(_allowed_global(name), name) for name in needed]
    if any(obj is None for obj, _ in entries):
        return None
    with torch.serialization.safe_globals(entries):
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def load_checkpoint_bytes(data: bytes, path: Path, *, pickle_ok: bool) -> dict[str, Any]:
    """A checkpoint dict from `data`: `weights_only` first, a full unpickle only when `pickle_ok`."""
    import torch

    try:
        ckpt = load_weights_only(data)
        if ckpt is None and pickle_ok:
            ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds on a damaged file
        first = str(exc).strip().splitlines()
        raise VigilError(f"not a readable PyTorch checkpoint ({type(exc).__name__}: "
                         f"{first[0][:200] if first else ''})", path=path) from None
    if ckpt is None:
        raise VigilError("the checkpoint holds objects beyond a detector's weights", path=path,
                         hint=f"export it to ONNX, or pass {TRUST_FLAG} if you trust its source")
    if not isinstance(ckpt, dict):
        raise VigilError(f"not an ultralytics checkpoint (a {type(ckpt).__name__}, not a dict)", path=path)
    return ckpt


def read_checkpoint(path: Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise VigilError("model checkpoint not found", path=path, hint="run the stage that writes it")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise VigilError(f"cannot read the checkpoint: {exc.strerror or exc}", path=path) from None


def load_pipeline_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint the pipeline itself writes during a stage (run folders, `dvc.yaml` outputs)."""
    return load_checkpoint_bytes(read_checkpoint(path), Path(path), pickle_ok=True)


def load_user_checkpoint(path: Path, *, repo: Path = Path("."), trust_pickle: bool = False,
                         field: str = "--model") -> dict[str, Any]:
    """A checkpoint a user named: refused before any unpickling unless trusted (see the module docstring)."""
    data = read_checkpoint(path)
    reason = trust_reason(digests(data), repo)
    if reason is None and not trust_pickle:
        raise VigilError(
            f"refusing to unpickle a checkpoint that this pipeline did not produce (its md5 is not an output in "
            f"{Path(repo) / 'dvc.lock'}) nor verify (params.yaml pretrained.sha256): loading a pickle can run "
            "any code it holds", path=path, field=field,
            hint=f"hand vigil a model from elsewhere as ONNX (`--engine onnx --model FILE.onnx`), "
                 f"or pass {TRUST_FLAG} if you trust where this file came from")
    return load_checkpoint_bytes(data, Path(path), pickle_ok=True)

