"""The machine a latency was measured on: CPU model, the ISA extensions that decide INT8 speed, cores.

A speed-up measured without the hardware named means nothing: onnxruntime's INT8 kernels use
VNNI (AVX-512 VNNI or AVX-VNNI) where the CPU has it and fall back to slower AVX2 sequences where
it does not, so the same model's INT8/FP32 ratio differs by CPU. Every metrics file that holds a
latency carries this block once, at its top.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The extensions that change CPU inference speed, as /proc/cpuinfo spells them.
ISA_FLAGS: tuple[str, ...] = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
)


def parse_cpuinfo(text: str) -> dict[str, object]:
    """CPU model and the known ISA flags of the first processor listed in /proc/cpuinfo's text."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"cpu": model or None, "isa": [f for f in ISA_FLAGS if f in flags]}


def describe(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """The hardware block: cpu, isa, vnni (bool), logical_cpus, usable_cpus, machine, system."""
    try:
        found = parse_cpuinfo(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux: the model name from platform, no flags
        found = {"cpu": platform.processor() or None, "isa": []}
    isa = list(found["isa"])  # type: ignore[call-overload]
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu": found["cpu"],
        "isa": isa,
        "vnni": any(f in isa for f in ("avx512_vnni", "avx_vnni", "amx_int8")),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "machine": platform.machine(),
        "system": platform.system(),
    }


def one_line(block: dict[str, object]) -> str:
    """E.g. 'AMD EPYC, 2 CPUs, avx2 avx512f avx512_vnni (VNNI)'."""
    isa = " ".join(str(f) for f in block.get("isa") or []) or "no ISA flags known"  # type: ignore[attr-defined]
    vnni = " (VNNI)" if block.get("vnni") else " (no VNNI)"
    return f"{block.get('cpu') or 'unknown CPU'}, {block.get('usable_cpus')} CPUs, {isa}{vnni}"
