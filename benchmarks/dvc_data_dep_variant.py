"""Where the data folder's DVC time goes, and what a dvc.yaml change would save (issue #15 §1).

    .venv/bin/python benchmarks/dvc_data_dep_variant.py --scratch /path/kept/by/dvc_overhead/repo \
        --report reports/bench/dvc_data_dep_variant.md

Runs in a scratch repository that `benchmarks/dvc_overhead.py --keep` left behind (a full repro done,
every stage up to date), never in a checkout of yours. Two dvc.yaml variants of the `hash` stage:

- `as committed`: `hash` depends on `data` (the folder). DVC walks the folder (stat of every file,
  .dvcignore, state lookups, tree digest) for `data.dvc`'s status, for `hash`'s status, and again
  for each run-cache key and `save` around the command;
- `data.dvc`: `hash` depends on the small `data.dvc` file instead (its md5 changes exactly when the
  folder's does, once `dvc add data` has run), so only the `data.dvc` stage could still walk the folder.

For each: the `hash` stage re-run alone (`dvc repro -f -s hash`; the command timed by the same
`python` shim as dvc_overhead.py, so DVC's own share = wall − command), then `--repeats` rounds of a
no-op `dvc repro` and `dvc status data.dvc`, and one cProfile of the no-op repro (how many times the
folder is built). dvc.yaml and dvc.lock are restored at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from dvc_overhead import SHIM, fmt, load, read_shim  # noqa: E402


def build_calls(dump: Path) -> tuple[int, float]:
    """(calls, cumulative seconds) of dvc-data's `_build_tree`: one per walk of a folder."""
    stats = pstats.Stats(str(dump), stream=io.StringIO())
    for (filename, _, func), row in stats.stats.items():  # type: ignore[attr-defined]
        if func == "_build_tree" and filename.endswith("build.py"):
            return int(row[1]), float(row[3])
    return 0, 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scratch", type=Path, required=True, help="a repo dvc_overhead.py --keep left"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.scratch.resolve()
    if not (root / "dvc.yaml").is_file() or not (root / "data.dvc").is_file():
        raise SystemExit(f"{root}: not a scratch repo with dvc.yaml and data.dvc")
    work = root.parent / "variant"
    work.mkdir(exist_ok=True)
    shim_dir, shim_log = work / "shim", work / "stage_times.tsv"
    shim_dir.mkdir(exist_ok=True)
    (shim_dir / "python").write_text(SHIM.format(real=sys.executable, log=shim_log))
    (shim_dir / "python").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),
        "DVC_NO_ANALYTICS": "1",
        "VIGIL_NO_PROGRESS": "1",
    }
    saved = {name: (root / name).read_bytes() for name in ("dvc.yaml", "dvc.lock")}

    def dvc(*cmd: str) -> tuple[float, str]:
        started = time.time()
        proc = subprocess.run(["dvc", *cmd], cwd=root, env=env, capture_output=True, text=True)
        wall = time.time() - started
        if proc.returncode != 0:
            raise SystemExit(f"dvc {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return wall, proc.stdout + proc.stderr

    rows: list[str] = []
    try:
        for variant in ("as committed", "data.dvc"):
            if variant == "data.dvc":
                text = saved["dvc.yaml"].decode()
                new, n = re.subn(
                    r"(\n      - src/vigil/progress.py\n      - )data\n",
                    r"\1data.dvc\n",
                    text,
                    count=1,
                )
                if n != 1:
                    raise SystemExit("could not find hash's `- data` dep in dvc.yaml")
                (root / "dvc.yaml").write_text(new)
                cmd = (
                    "repro",
                )  # deps changed: hash re-runs (its outputs unchanged, so nothing after it)
            else:
                cmd = ("repro", "-f", "-s", "hash")
            before = len(read_shim(shim_log))
            l0 = load()
            wall, out = dvc(*cmd)
            ran = read_shim(shim_log)[before:]
            command = sum(end - start for start, end, _, _ in ran)
            names = [Path(s[3]).stem for s in ran]
            noop, status = [], []
            for _ in range(args.repeats):
                w1, out1 = dvc("repro")
                if "Running stage" in out1:
                    raise SystemExit(f"no-op repro ran a stage:\n{out1}")
                w2, _ = dvc("status", "data.dvc")
                noop.append(w1)
                status.append(w2)
            dump = work / f"noop_{variant.replace(' ', '_')}.prof"
            dvc("repro", "--cprofile-dump", str(dump))
            calls, cum = build_calls(dump)
            dump2 = work / f"status_{variant.replace(' ', '_')}.prof"
            dvc("status", "data.dvc", "--cprofile-dump", str(dump2))
            calls2, cum2 = build_calls(dump2)
            m_noop, m_status = statistics.median(noop), statistics.median(status)
            rows.append(
                f"| {variant} | {' '.join(cmd)}: {fmt(wall)} ({', '.join(names)}: {fmt(command)}; "
                f"DVC {fmt(wall - command)}) | {fmt(m_noop)} ({', '.join(f'{w:.1f}' for w in noop)}) "
                f"| {fmt(m_status)} ({', '.join(f'{w:.1f}' for w in status)}) | {m_noop / m_status:.2f} "
                f"| {calls} ({cum:.1f} s) / {calls2} ({cum2:.1f} s) | {l0} |"
            )
            print(rows[-1], flush=True)
    finally:
        for name, data in saved.items():
            (root / name).write_bytes(data)
        shutil.rmtree(shim_dir, ignore_errors=True)
    report = (
        "# The data folder's DVC time: `hash` on `data` vs on `data.dvc` (issue #15 §1)\n\n"
        f"Scratch repo {root}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores.\n\n"
        "| hash depends on | hash stage alone: wall (command; DVC) | no-op `dvc repro` median | "
        "`dvc status data.dvc` median | ratio | folder walks (`_build_tree` calls, cProfile cum.) "
        "no-op repro / status | load avg at start |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    print(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
