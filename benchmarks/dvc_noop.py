"""No-op `dvc repro` of the real graph against `dvc status data.dvc`, on an up-to-date repo (issue #15 §1).

    .venv/bin/python benchmarks/dvc_noop.py --repo DIR --report reports/bench/dvc_noop_100k.md
    .venv/bin/python benchmarks/dvc_noop.py --assemble-from SCRATCH/repo --released . --repo NEW ...

`--repo` must be a DVC repo whose every stage is up to date (e.g. a scratch repo that
`benchmarks/dvc_overhead.py --keep` ran through). `--assemble-from` builds one without running the
slow stages: a `git clone` of a dvc_overhead.py scratch repo (its commit holds the 100k `data.dvc`
and the ci params), its data folder and DVC cache hard-linked (scratch copies, never the source
dataset), the outputs that exist there copied, the others copied from `--released` (a checkout
with the released outputs, used only as same-sized stand-ins), then `dvc commit -f` records them all
in dvc.lock. What a no-op repro costs depends on the graph and on the sizes of what it checks, not
on which numbers the outputs hold.

Then `--repeats` interleaved rounds of a no-op `dvc repro`, `dvc status data.dvc` and `dvc status`,
medians and the ratio (target ≤ 1.5), and one cProfile of the first two (DVC's `--cprofile-dump`)
with the number of folder tree builds (dvc-data's `_build_tree`; the data folder's are the costly ones).
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dvc_overhead import Runner, fmt, load, top_functions  # noqa: E402
from report_file import emit  # noqa: E402

OUTPUTS = [  # every stage output of dvc.yaml (files and folders), in stage order
    "artifacts/hash/files.jsonl",
    "metrics/dataset.json",
    "reports/validate",
    "metrics/validate.json",
    "artifacts/split",
    "metrics/split.json",
    "models/pretrained/yolov8s_fall.pt",
    "models/teacher/best.pt",
    "plots/train",
    "metrics/train.json",
    "models/student/best.pt",
    "models/control/best.pt",
    "plots/distill",
    "metrics/distill.json",
    "artifacts/evaluate/detections_val.json",
    "artifacts/evaluate/detections_test.json",
    "plots/evaluate",
    "metrics/evaluate.json",
    "models/calibration.json",
    "plots/calibrate/reliability.csv",
    "metrics/calibrate.json",
    "models/range.json",
    "metrics/range.json",
    "models/export",
    "metrics/export.json",
    "reports/gate.md",
    "reports/release.md",
    "metrics/gate.json",
]


def tree_builds(dump: Path) -> tuple[int, float]:
    stats = pstats.Stats(str(dump), stream=io.StringIO())
    for (filename, _, func), row in stats.stats.items():  # type: ignore[attr-defined]
        if func == "_build_tree" and filename.endswith("build.py"):
            return int(row[1]), float(row[3])
    return 0, 0.0


def assemble(source: Path, released: Path, dest: Path, env: dict[str, str]) -> list[str]:
    notes = []
    subprocess.run(["git", "clone", "-q", str(source), str(dest)], check=True, env=env)
    subprocess.run(["cp", "-al", str(source / "data"), str(dest / "data")], check=True)
    (dest / ".dvc" / "cache").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["cp", "-al", str(source / ".dvc/cache/files"), str(dest / ".dvc/cache/")], check=True
    )
    for rel in OUTPUTS:
        for base in (source, released):
            src = base / rel
            if (src.is_dir() and any(src.rglob("*"))) or src.is_file():
                target = dest / rel
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                target.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, target, ignore=shutil.ignore_patterns(".gitignore"))
                else:
                    shutil.copy2(src, target)
                notes.append(f"{rel} ← {'scratch' if base == source else 'released'}")
                break
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repo", type=Path, required=True, help="an up-to-date repo (or where to assemble one)"
    )
    parser.add_argument(
        "--assemble-from", type=Path, default=None, help="a dvc_overhead.py scratch repo"
    )
    parser.add_argument(
        "--released", type=Path, default=HERE.parent, help="checkout with the released outputs"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.repo.resolve()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),
        "DVC_NO_ANALYTICS": "1",
        "VIGIL_NO_PROGRESS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    logs = root.parent / f"{root.name}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    setup: list[tuple[str, str, str]] = []
    if args.assemble_from is not None:
        if root.exists():
            raise SystemExit(f"{root}: already exists")
        l0, t0 = load(), time.time()
        notes += assemble(args.assemble_from.resolve(), args.released.resolve(), root, env)
        setup.append(("assemble (clone, hard links, copies)", fmt(time.time() - t0), l0))
        runner = Runner(root, env, logs)
        l1 = load()
        wall, _, _ = runner.run(["dvc", "commit", "-f", "-q"], "commit")
        setup.append(
            ("`dvc commit -f` (records every stage; hashes the new paths once)", fmt(wall), l1)
        )
        l2 = load()
        wall, lines, _ = runner.run(["dvc", "repro"], "repro_settle")
        setup.append(("first `dvc repro` after the commit (fills DVC's state)", fmt(wall), l2))
        if any("Running stage" in text for _, text in lines):
            raise SystemExit(f"the assembled repo is not up to date: see {logs}")
    runner = Runner(root, env, logs)
    images = sum(1 for _ in (root / "data" / "images").rglob("*.jpg"))
    noop, status, status_all = [], [], []
    for i in range(args.repeats):
        l1 = load()
        wall, lines, _ = runner.run(["dvc", "repro"], f"noop_{i}")
        if any("Running stage" in text for _, text in lines):
            raise SystemExit(
                f"round {i}: `dvc repro` ran a stage (the repo is not up to date): {logs}"
            )
        noop.append((wall, l1))
        l2 = load()
        wall2, _, _ = runner.run(["dvc", "status", "data.dvc"], f"status_data_{i}")
        status.append((wall2, l2))
        l3 = load()
        wall3, _, _ = runner.run(["dvc", "status"], f"status_all_{i}")
        status_all.append((wall3, l3))
        print(
            f"round {i}: no-op repro {wall:.2f} s, status data.dvc {wall2:.2f} s, status {wall3:.2f} s (load {l1})",
            flush=True,
        )
    profiles = {}
    for name, cmd in (
        ("no-op dvc repro", ["dvc", "repro"]),
        ("dvc status data.dvc", ["dvc", "status", "data.dvc"]),
    ):
        dump = logs / f"{name.replace(' ', '_')}.prof"
        runner.run([*cmd, "--cprofile-dump", str(dump)], f"cprofile_{name.replace(' ', '_')}")
        profiles[name] = (tree_builds(dump), top_functions(dump, 30))
    med = {
        k: statistics.median(w for w, _ in v)
        for k, v in (("noop", noop), ("status", status), ("all", status_all))
    }
    ratio = med["noop"] / med["status"]

    def spread(values: list[tuple[float, str]]) -> str:
        return ", ".join(f"{w:.2f}" for w, _ in values)

    out = io.StringIO()
    out.write("# No-op `dvc repro` vs `dvc status data.dvc` (issue #15 §1)\n\n")
    out.write(
        f"Repo {root} ({images} images in data/); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} cores.\n\n| measure | value | load avg 1/5/15 at start |\n|---|---|---|\n"
    )
    for what, value, ld in setup:
        out.write(f"| {what} | {value} | {ld} |\n")
    out.write(
        f"| no-op `dvc repro`, median of {len(noop)} | {fmt(med['noop'])} ({spread(noop)}) | {noop[0][1]} |\n"
    )
    out.write(
        f"| `dvc status data.dvc`, median of {len(status)} | {fmt(med['status'])} ({spread(status)}) "
        f"| {status[0][1]} |\n"
    )
    out.write(
        f"| `dvc status` (whole graph), median of {len(status_all)} | {fmt(med['all'])} ({spread(status_all)}) "
        f"| {status_all[0][1]} |\n"
    )
    out.write(
        f"| **ratio** no-op repro / status data.dvc | **{ratio:.2f}** "
        f"{'✅' if ratio <= 1.5 else '❌ (> 1.5)'} | |\n"
    )
    for name, ((calls, cum), text) in profiles.items():
        out.write(
            f"\n## cProfile: {name}: {calls} folder tree builds ({cum:.1f} s cumulative)\n\n"
            f"```\n{text.rstrip()}\n```\n"
        )
    if notes:
        out.write("\nAssembled: " + "; ".join(notes) + "\n")
    out.write(f"\nLogs: {logs}\n")
    report = out.getvalue()
    emit(report, args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
