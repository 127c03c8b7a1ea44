"""Does the root .dvcignore cost the data-folder walk? Root vs scoped to src/vigil/ (issue #15 §1).

    .venv/bin/python benchmarks/dvcignore_scope.py --scratch DIR --rounds 3 --report reports/bench/dvcignore_scope.md

The repository's `.dvcignore` (`__pycache__/`, `*.pyc`) exists for the `src/vigil/export` folder
dependency, but at the root DVC matches every one of data/'s 200,002 files against it on every walk.
The same patterns in `src/vigil/.dvcignore` cover that folder only. In an up-to-date scratch repo
(benchmarks/dvc_noop.py), rounds alternate the two placements, each timing `dvc status data.dvc` and a
no-op `dvc repro` (checked to run nothing). The root placement is restored at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dvc_overhead import fmt, load  # noqa: E402
from report_file import emit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scratch", type=Path, required=True, help="an up-to-date scratch repo (dvc_noop.py)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.scratch.resolve()
    top, scoped = root / ".dvcignore", root / "src" / "vigil" / ".dvcignore"
    if not top.is_file() or scoped.exists():
        raise SystemExit(f"{root}: expected a root .dvcignore and none in src/vigil/")
    text = top.read_text()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),
        "DVC_NO_ANALYTICS": "1",
    }

    def dvc(*cmd: str) -> tuple[float, str]:
        started = time.time()
        proc = subprocess.run(["dvc", *cmd], cwd=root, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"dvc {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return time.time() - started, proc.stdout + proc.stderr

    times: dict[str, dict[str, list[float]]] = {
        p: {"status": [], "repro": []} for p in ("root", "src/vigil")
    }
    loads = []
    try:
        for _ in range(args.rounds):
            for place in ("root", "src/vigil"):
                if place == "root":
                    scoped.unlink(missing_ok=True)
                    top.write_text(text)
                else:
                    top.unlink()
                    scoped.write_text(text)
                loads.append(load())
                wall, _ = dvc("status", "data.dvc")
                times[place]["status"].append(wall)
                wall, out = dvc("repro")
                if "Running stage" in out:
                    raise SystemExit(f"not a no-op with the .dvcignore at {place}:\n{out}")
                times[place]["repro"].append(wall)
                print(
                    place,
                    {k: round(v[-1], 2) for k, v in times[place].items()},
                    loads[-1],
                    flush=True,
                )
    finally:
        scoped.unlink(missing_ok=True)
        top.write_text(text)
    rows = []
    for place, by in times.items():
        s, r = statistics.median(by["status"]), statistics.median(by["repro"])
        rows.append(
            f"| {place}/.dvcignore | {fmt(s)} ({', '.join(f'{v:.1f}' for v in by['status'])}) "
            f"| {fmt(r)} ({', '.join(f'{v:.1f}' for v in by['repro'])}) | {r / s:.2f} |"
        )
    report = (
        "# The .dvcignore at the root vs in src/vigil/ (issue #15 §1)\n\n"
        f"Scratch repo {root}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; "
        f"load averages at each step: {'; '.join(loads)}.\n\n"
        "| patterns in | `dvc status data.dvc` median | no-op `dvc repro` median | ratio |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    emit(report, args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
