"""Params profiles (`profiles/*.yaml`): overlays of params.yaml turned into `dvc exp run -S` arguments.

A profile is a partial params.yaml. Running it the DVC way keeps it an experiment of the same graph:
`dvc exp run $(vigil profile profiles/quick.yaml)` — every key becomes one `-S dotted.key=value`.

The shell splits an unquoted `$(…)` on whitespace and expands `*`, `?` and `[…]` in it, and no
quoting survives that, so a value holding one of those is refused in that form (naming the key);
`--print0` writes the same arguments NUL-separated for `xargs -0 dvc exp run`, safe for any value.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from vigil.errors import VigilError

SHELL_UNSAFE = re.compile(r"[\s*?\[\]]")  # what word splitting and globbing act on after $(…)
PRINT0_HINT = "use `vigil profile FILE --print0 | xargs -0 dvc exp run` for such values"


def read_tree(path: Path, field: str | None = None) -> dict[str, Any]:
    """A YAML mapping of sections; anything else (missing, not UTF-8, not YAML, not a mapping) is one error."""
    try:
        data = yaml.safe_load(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise VigilError(f"cannot read it: {exc.strerror or exc}", path=path, field=field) from None
    except UnicodeDecodeError as exc:
        raise VigilError(
            f"not UTF-8 text (byte {exc.start})", path=path, field=field, hint="save it as UTF-8"
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        first = str(exc).strip().splitlines()
        raise VigilError(
            f"not valid YAML ({first[0] if first else type(exc).__name__})", path=path, field=field
        ) from None
    if not isinstance(data, dict):
        raise VigilError(
            f"must be a mapping of sections (train:, distill:, …), not {type(data).__name__}",
            path=path,
            field=field,
        )
    return data


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


def _check_keys(tree: dict[str, Any], profile: Path, prefix: str = "") -> None:
    """Keys must be plain names: a dotted path is how DVC addresses them."""
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            raise VigilError(
                f"key {key!r} is not a params name",
                path=profile,
                field=dotted,
                hint="keys are names like `epochs`, nested under their section",
            )
        if isinstance(value, dict):
            _check_keys(value, profile, dotted)


def sections(tree: dict[str, Any], prefix: str = "") -> dict[str, bool]:
    """Dotted path of every mapping in `tree` → whether it is empty (an open mapping any key may extend)."""
    out: dict[str, bool] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out[dotted] = not value
            out.update(sections(value, dotted))
    return out


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.items() for leaf in _leaves(list(item))]
    return [value]


def _check_value(key: str, value: Any, profile: Path, shell: bool) -> None:
    leaves = _leaves(value)
    bad = [v for v in leaves if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise VigilError(
            f"{bad[0]!r} is not a finite number",
            path=profile,
            field=key,
            hint="DVC would read it back as a string",
        )
    unsafe = [v for v in leaves if isinstance(v, str) and SHELL_UNSAFE.search(json.dumps(v))]
    if shell and unsafe:
        raise VigilError(
            f"the value {unsafe[0]!r} holds a space or one of * ? [ ], which the shell would split or "
            "expand in $(vigil profile …)",
            path=profile,
            field=key,
            hint=PRINT0_HINT,
        )


def set_arguments(
    profile: Path, params: Path = Path("params.yaml"), *, shell: bool = True
) -> list[str]:
    """`-S key=value` pairs for every key of `profile`, checked against `params`.

    A key params.yaml does not have is an error, and so is a scalar where params.yaml has a section
    (`train: 3`). With `shell` (the `$(…)` form), a value the shell would split or glob is an error.
    """
    if not Path(params).is_file():
        raise VigilError(
            "params file not found: a profile is checked against it",
            path=params,
            field="--params",
            hint="run from the repository root or give --params",
        )
    base = read_tree(params, "--params")
    known, mappings = flatten(base), sections(base)
    tree = read_tree(profile)
    _check_keys(tree, profile)
    flat = flatten(tree)
    if not flat:
        raise VigilError(
            "the profile sets no params",
            path=profile,
            hint="give sections with keys, e.g. train: {epochs: 2}",
        )
    args: list[str] = []
    for key, value in flat.items():
        parents = [key.rsplit(".", n)[0] for n in range(1, key.count(".") + 1)]
        if key in mappings:
            raise VigilError(
                f"{key!r} is a section of {params}, not a value (got {value!r})",
                path=profile,
                field=key,
                hint="set keys under it, e.g. `train:` then `  epochs: 2` on the next line",
            )
        if key not in known and key not in mappings and not any(mappings.get(p) for p in parents):
            raise VigilError(
                f"unknown key {key!r}",
                path=profile,
                field=key,
                hint=f"{params} has no such key; check its spelling",
            )
        _check_value(key, value, profile, shell)
        args += ["-S", f"{key}={override_value(value, key, profile)}"]  # no spaces: safe in $(…)
    return args


_HYDRA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


def override_value(value: Any, key: str, profile: Path) -> str:
    """`value` in Hydra's override grammar (what `dvc exp run -S` parses), without spaces.

    JSON is that grammar for scalars and lists, but not for mappings: Hydra's dict keys are bare
    words (`[{method:minmax}]`), a quoted key is a syntax error.
    """
    if isinstance(value, dict):
        bad = next((k for k in value if not _HYDRA_KEY.match(str(k))), None)
        if bad is not None:
            raise VigilError(
                f"the key {bad!r} inside a mapping value cannot be passed to `dvc exp run -S`",
                path=profile,
                field=key,
                hint="use keys made of letters, digits, _ and -",
            )
        items = ",".join(f"{k}:{override_value(v, key, profile)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ",".join(override_value(v, key, profile) for v in value) + "]"
    return json.dumps(value)
