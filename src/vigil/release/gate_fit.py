"""Gates that cannot fit the data fail fast: when `validate` runs, not at the `gate` stage after training.

A gate on `…per_stratum.<key>.<value>.…` names a stratum value; if `validate.allowed.<key>` does not
allow that value, no image can ever carry it, the metric can never exist, and the release would fail
its gate only after every model stage has run. Checked here, against the allowed values, with an
error naming the gate. `…per_stratum.<key>.*.…` (every value found) always fits.
"""

from __future__ import annotations

from vigil.errors import VigilError
from vigil.release.gate import WILDCARD, split_metric
from vigil.release.params import GateParams, GateSpec

STRATUM_PART = "per_stratum"


def gate_problem(gate: GateSpec, allowed: dict[str, list[str]]) -> str | None:
    """Why `gate` cannot fit data whose strata take only the `allowed` values, or None."""
    for path in split_metric(gate.metric)[0]:
        parts = path.split(".")
        if parts.count(WILDCARD) > 1 or parts[0] == WILDCARD:
            return f"{path!r} uses `*` more than once or as the document name"
        for i, part in enumerate(parts[:-1]):
            if part != STRATUM_PART:
                continue
            key, rest = parts[i + 1], ".".join(parts[i + 2 :])
            if key not in allowed:
                return f"names stratum {key!r}; the strata are {', '.join(sorted(allowed))}"
            if rest == WILDCARD or rest.startswith(WILDCARD + ".") or not rest:
                continue
            if not any(rest == v or rest.startswith(v + ".") for v in allowed[key]):
                value = rest.split(".")[0]
                return (
                    f"names {key} value {value!r}, which validate.allowed.{key} does not allow "
                    f"({', '.join(allowed[key])})"
                )
    return None


def check_gates_fit(params: GateParams, allowed: dict[str, list[str]]) -> None:
    """Raise one VigilError naming the first gate that cannot fit (and how many more there are)."""
    problems = [(g, p) for g in params.gates if (p := gate_problem(g, allowed)) is not None]
    if not problems:
        return
    gate, problem = problems[0]
    more = f" (and {len(problems) - 1} more gates)" if len(problems) > 1 else ""
    raise VigilError(
        f"gate {gate.name!r} {problem}{more}",
        field=f"gate.gates.{gate.name}",
        hint=f"gate every value with `{STRATUM_PART}.<key>.*.…`, or name an allowed value "
        "(or add the value to validate.allowed)",
    )
