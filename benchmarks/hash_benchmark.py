"""Benchmark of the hash stage, on one copy of a dataset in one run:

1. full (cold-cache) hash throughput, MB/s and files/s, against `sha256sum` over the same files;
2. the incremental re-hash after one changed file, as a fraction of the cold hash.

    .venv/bin/python benchmarks/hash_benchmark.py --data data

The dataset is copied to a temporary folder first (raw data is never modified); the page cache is
warmed before any timing, so both sides measure hashing, not the disk. Times are medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("VIGIL_NO_PROGRESS", "1")

from vigil.data.hashing import hash_tree, scan_files
from vigil.data.summary import hash_dataset

CHUNK_FILES = 256  # files per sha256sum call: far below ARG_MAX, few enough calls to not dominate


def median_seconds(
    work: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None
) -> float:
    """Median wall time of `work`; `setup` runs untimed before each repeat."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sha256sum(root: Path, rels: list[str]) -> dict[str, str]:
    """`sha256sum` over the files, argument lists in chunks, no shell."""
    out: dict[str, str] = {}
    for i in range(0, len(rels), CHUNK_FILES):
        done = subprocess.run(
            ["sha256sum", "--", *rels[i : i + CHUNK_FILES]],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        )
        for line in done.stdout.splitlines():
            sha, rel = line.split("  ", 1)
            out[rel] = sha
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path("data"), help="dataset folder to measure on"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="hash threads (params.yaml hash.workers)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per measurement (median)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vigil-hash-bench-") as tmp:
        root = Path(tmp) / "data"
        shutil.copytree(args.data, root)
        found = scan_files(root)
        rels = [f.rel for f in found]
        total = sum(f.size for f in found)
        mb, n = total / 1e6, len(found)
        print(
            f"dataset: {args.data} ({n} files, {mb:.1f} MB), copied to {root}; "
            f"{os.cpu_count()} CPUs, median of {args.repeats}"
        )

        ours = {
            e.path: e.sha256 for e in hash_tree(root, workers=args.workers).entries
        }  # also warms the page cache
        theirs = sha256sum(root, rels)
        assert ours == theirs, "vigil and sha256sum disagree"
        print(f"check: all {n} sha256 equal to sha256sum's")

        caches = iter(Path(tmp) / f"cold-{i}.json" for i in range(10 * args.repeats))
        cold = {
            w: median_seconds(
                lambda w=w: hash_tree(root, workers=w, cache_path=next(caches)), args.repeats
            )
            for w in sorted({1, args.workers})
        }
        coreutils = median_seconds(lambda: sha256sum(root, rels), args.repeats)
        print(
            f"sha256sum ({CHUNK_FILES} files/call): {coreutils:.3f} s  {mb / coreutils:7.1f} MB/s  "
            f"{n / coreutils:7.0f} files/s"
        )
        for w, seconds in cold.items():
            print(
                f"vigil cold, workers={w}:        {seconds:.3f} s  {mb / seconds:7.1f} MB/s  {n / seconds:7.0f} files/s"
                f"  = {coreutils / seconds:.2f}x sha256sum's throughput"
            )

        cache = Path(tmp) / "warm.json"
        hash_tree(root, workers=args.workers, cache_path=cache)
        victim = root / next(r for r in rels if r.startswith("labels/"))
        original = victim.read_bytes()
        edits = iter(range(10 * args.repeats))

        def change_one_file() -> None:
            victim.write_bytes(  # 1 or 2 extra bytes by turns: the size always differs from the cached one
                original + b"\n" * (next(edits) % 2 + 1)
            )

        def rehash() -> None:
            result = hash_tree(root, workers=args.workers, cache_path=cache)
            assert result.hashed == [victim.relative_to(root).as_posix()], result.hashed

        incremental = median_seconds(rehash, args.repeats, setup=change_one_file)
        unchanged = median_seconds(
            lambda: hash_tree(root, workers=args.workers, cache_path=cache), args.repeats
        )
        base = cold[args.workers]
        print(
            f"vigil one changed file (workers={args.workers}): {incremental:.3f} s = "
            f"{incremental / base:.2f} of a cold hash "
            f"({base / incremental:.1f}x faster); nothing changed: {unchanged:.3f} s = {unchanged / base:.2f}"
        )

        out = Path(tmp) / "out"
        stage_caches = iter(Path(tmp) / f"stage-{i}.json" for i in range(10 * args.repeats))

        def stage(cache_path: Path) -> None:
            hash_dataset(
                root,
                files_out=out / "files.jsonl",
                metrics_out=out / "dataset.json",
                workers=args.workers,
                cache_path=cache_path,
            )

        stage_cold = median_seconds(lambda: stage(next(stage_caches)), args.repeats)
        stage_warm = median_seconds(lambda: stage(cache), args.repeats, setup=change_one_file)
        print(
            f"whole stage (hash + summary + writes): cold {stage_cold:.3f} s, one changed file {stage_warm:.3f} s "
            f"= {stage_warm / stage_cold:.2f} of cold (the summary re-reads label files and the manifest)"
        )


if __name__ == "__main__":
    main()
