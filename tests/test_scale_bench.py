"""benchmarks/scale_benchmark.py: the table it prints (issue #15 §2), from made-up timings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "scale_benchmark", REPO / "benchmarks/scale_benchmark.py"
)
assert _spec and _spec.loader
sb = importlib.util.module_from_spec(_spec)
sys.modules["scale_benchmark"] = sb
_spec.loader.exec_module(sb)


def rows(full: float, noop: float) -> dict[str, object]:
    def row(name: str, *seconds: float) -> object:
        return sb.Row(name, [sb.Run(s, 100.0, s) for s in seconds])

    out = {
        "sha256sum, 2 processes": row("sha256sum, 2 processes", 2.0, 1.8, 2.2),
        "plain Python loop, 1 process": row("plain Python loop, 1 process", 1.8),
        "floor: scandir + stat of every file": row("floor", 0.5),
        "floor in C: find -printf": row("floor in C", 0.4),
        "startup: python -c 'import vigil.cli'": row("startup", 0.1),
        "_images": row("_images", 1000.0),
    }
    for step, seconds in (
        ("vigil data hash", full),
        ("vigil data hash, nothing changed", noop),
        ("vigil data check", 0.25),
        ("vigil data split", 1.0),
    ):
        out[f"current: {step}"] = row(step, seconds)
    return out


def test_the_table_gives_each_ratio_against_the_median_sha256sum() -> None:
    text = sb.table(rows(full=4.0, noop=1.0), ["current"], 2002)  # type: ignore[arg-type]
    assert "1000 images, 2002 files" in text
    assert (
        "| current: `vigil data hash` | 4.00 |" in text and "0.50× sha256sum's throughput" in text
    )
    assert "25% of a full hash | ≤ 10% |" in text
    assert "20% of sha256sum's time" in text  # the C stat floor: 0.4 s against the median 2.0 s
    assert "| startup: `python -c 'import vigil.cli'` | 0.10 |" in text
    assert "4000 images/s" in text


def test_a_faster_hash_reads_as_a_higher_ratio() -> None:
    slow = sb.table(rows(full=4.0, noop=1.0), ["current"], 10)  # type: ignore[arg-type]
    fast = sb.table(rows(full=2.0, noop=0.2), ["current"], 10)  # type: ignore[arg-type]
    assert "0.50× sha256sum's throughput" in slow and "1.00× sha256sum's throughput" in fast
    assert "10% of a full hash" in fast
