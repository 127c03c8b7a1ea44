"""Validate throughput: images/s of `check_dataset` (GE suites + decode + leakage) on a dataset folder.

python benchmarks/validate_benchmark.py data --repeats 3 --workers 1 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("VIGIL_NO_PROGRESS", "1")

from vigil.data.checks import check_dataset
from vigil.params import ValidateParams, default_params_file, load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument(
        "--params", type=Path, default=None, help="default: ./params.yaml, else the repository's"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    base = load_section(args.params or default_params_file(), "validate", ValidateParams)
    for workers in args.workers:
        params = replace(base, workers=workers)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = check_dataset(args.data, params)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        images = report.stats["images"]
        print(
            f"workers={workers}: {images} images in {median:.2f} s (median of {args.repeats}) = "
            f"{images / median:.0f} images/s; {len(report.findings)} findings, passed={report.passed}"
        )


if __name__ == "__main__":
    main()
