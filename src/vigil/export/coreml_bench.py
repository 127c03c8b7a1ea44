"""`vigil bench coreml`: a CoreML package's prediction time on a Mac, as JSON `vigil report` shows.

CoreML prediction runs only on macOS, so the export stage (on Linux) records it as "not run" and a
team times the shipped package on its Mac: the seed's `benchmark_coreml_model` (warm-up, then N
timed predictions; mean / std / min / max in ms), on a seeded random image of the package's input
size, with the machine named (chip, macOS, compute units). Elsewhere the command refuses in one
line: a number this machine cannot measure is never written.
"""

from __future__ import annotations

import math
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.hardware import describe

SCHEMA = "vigil.coreml_bench/1"
DEFAULT_OUT = Path(
    "reports/coreml_bench.json"
)  # where `vigil bench coreml` writes, `vigil report` looks
COMPUTE_UNITS = ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")  # coremltools' ComputeUnit names
STATS = ("mean", "std", "min", "max", "median")


def refuse_unless_macos(system: str | None = None) -> None:
    """A VigilError unless this is macOS: CoreML prediction needs it."""
    system = system or platform.system()
    if system != "Darwin":
        raise VigilError(
            f"CoreML prediction needs macOS; this machine runs {system}",
            field="vigil bench coreml",
            hint="run it on a Mac; the export stage checks the packages' specs here",
        )


def check_options(package: Path, iterations: int, warmup: int, compute_units: str) -> None:
    if iterations < 1:
        raise VigilError(f"must be at least 1, got {iterations}", field="--iterations")
    if warmup < 0:
        raise VigilError(f"must be 0 or more, got {warmup}", field="--warmup")
    if compute_units not in COMPUTE_UNITS:
        raise VigilError(
            f"unknown compute units {compute_units!r}",
            field="--compute-units",
            hint=f"choose from {', '.join(COMPUTE_UNITS)}",
        )
    if not (Path(package) / "Manifest.json").is_file():
        raise VigilError(
            "not a .mlpackage (no Manifest.json)",
            path=package,
            hint="give a package the export stage wrote (FP16 or INT8 weights)",
        )


def summarize(seconds: list[float]) -> dict[str, float]:
    """Mean, population std (as the seed's np.std), min, max and median of `seconds`, in ms."""
    ms = sorted(s * 1000 for s in seconds)
    mean = sum(ms) / len(ms)
    mid = len(ms) // 2
    median = ms[mid] if len(ms) % 2 else (ms[mid - 1] + ms[mid]) / 2
    std = math.sqrt(sum((v - mean) ** 2 for v in ms) / len(ms))
    return {k: round(v, 3) for k, v in zip(STATS, (mean, std, ms[0], ms[-1], median), strict=True)}


def mac_machine() -> dict[str, Any]:
    """The hardware block plus the chip (sysctl) and macOS version."""
    try:
        chip = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        chip = ""
    return describe() | {"chip": chip or None, "macos": platform.mac_ver()[0] or None}


def benchmark(package: Path, *, iterations: int, warmup: int, compute_units: str) -> dict[str, Any]:
    """Time `iterations` predictions of `package` after `warmup` untimed ones (macOS only)."""
    refuse_unless_macos()
    check_options(package, iterations, warmup, compute_units)
    import coremltools as ct
    import numpy as np
    from PIL import Image

    model = ct.models.MLModel(str(package), compute_units=ct.ComputeUnit[compute_units.upper()])
    image_input = model.get_spec().description.input[0]
    height, width = image_input.type.imageType.height, image_input.type.imageType.width
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    feed = {image_input.name: Image.fromarray(pixels)}
    for _ in range(warmup):
        model.predict(feed)
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        model.predict(feed)
        seconds.append(time.perf_counter() - start)
    return {
        "schema": SCHEMA,
        "package": Path(package).as_posix(),
        "version": model.version,
        "input": [height, width],
        "iterations": iterations,
        "warmup": warmup,
        "compute_units": compute_units,
        "latency_ms": summarize(seconds),
        "coremltools": ct.__version__,
        "machine": mac_machine(),
    }


def read_bench(path: Path) -> dict[str, Any]:
    """A `vigil bench coreml` JSON, checked: the fields the report shows are there and numeric."""
    import json

    hint = "give a file `vigil bench coreml` wrote"
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise VigilError(f"cannot read it: {exc.strerror or exc}", path=path, hint=hint) from None
    except (UnicodeDecodeError, ValueError):
        raise VigilError("not JSON", path=path, hint=hint) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise VigilError(f"not a {SCHEMA} document", path=path, field="schema", hint=hint)
    latency = doc.get("latency_ms")
    for key in STATS:
        value = latency.get(key) if isinstance(latency, dict) else None
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise VigilError(
                "missing or not a number", path=path, field=f"latency_ms.{key}", hint=hint
            )
    for key in ("iterations", "warmup"):
        if not isinstance(doc.get(key), int):
            raise VigilError("missing or not an integer", path=path, field=key, hint=hint)
    if not isinstance(doc.get("machine"), dict):
        raise VigilError("missing or not an object", path=path, field="machine", hint=hint)
    return doc


def bench_section(doc: dict[str, Any], source: str) -> list[str]:
    """Markdown lines of one benchmark document (`source`: the file it came from)."""
    m, lat = doc["machine"], doc["latency_ms"]
    machine = ", ".join(
        str(v)
        for v in (
            m.get("chip") or m.get("cpu") or "unknown chip",
            f"macOS {m['macos']}" if m.get("macos") else None,
            f"{m.get('logical_cpus')} CPUs" if m.get("logical_cpus") else None,
        )
        if v
    )
    return [
        "## CoreML on a Mac (`vigil bench coreml`)",
        "",
        "| package | version | compute units | iterations (warm-up) | mean | std | min | max |",
        "|---|---|---|---|---|---|---|---|",
        f"| `{doc.get('package', '—')}` | {doc.get('version') or '—'} | {doc.get('compute_units', '—')} "
        f"| {doc['iterations']} ({doc['warmup']}) | {lat['mean']:.2f} ms | {lat['std']:.2f} ms "
        f"| {lat['min']:.2f} ms | {lat['max']:.2f} ms |",
        "",
        f"On {machine}, coremltools {doc.get('coremltools', '—')}; from `{source}`.",
        "",
    ]
