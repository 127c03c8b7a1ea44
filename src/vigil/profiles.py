"""Params profiles (`profiles/*.yaml`): overlays of params.yaml turned into `dvc exp run -S` arguments.

A profile is a partial params.yaml. Running it the DVC way keeps it an experiment of the same graph:
`dvc exp run $(vigil profile profiles/quick.yaml)` — every key becomes one `-S dotted.key=value`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.params import load_yaml


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings → dotted keys; lists and scalars are leaves."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def set_arguments(profile: Path, params: Path = Path("params.yaml")) -> list[str]:
    """`-S key=value` pairs for every key of `profile`; a key params.yaml does not have is an error."""
    known = flatten(load_yaml(params)) if params.is_file() else None
    args: list[str] = []
    for key, value in flatten(load_yaml(profile)).items():
        if known is not None and key not in known and not any(k.startswith(key + ".") for k in known):
            raise VigilError(f"unknown key {key!r}", path=profile, field=key,
                             hint=f"{params} has no such key; check its spelling")
        args += ["-S", f"{key}={json.dumps(value, separators=(',', ':'))}"]  # no spaces: safe in $(…)
    return args
