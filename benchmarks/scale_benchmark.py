"""Issue #15's scale table in one run: hash, no-op hash, check and split at 100k images, with the
coreutils and plain-Python references beside them, for this tree's code and (optionally) a baseline
revision's, measured side by side on the same files.

    .venv/bin/python benchmarks/scale_benchmark.py                       # generates /tmp/vigil-scale-100k
    .venv/bin/python benchmarks/scale_benchmark.py --baseline 23b4156 --report reports/bench/scale.md

Each command runs as its own process, as a user runs it (`python -m vigil.cli data hash …`), with
PYTHONPATH pointing at this tree's src/ or at the baseline's (`git archive REV src`). The page cache
is warm (the data was just written or read); times are medians of `--repeats`, alternating
baseline and current so that a change of load hits both alike. Peak memory is the largest sum of
RSS over the command's process tree (workers included), sampled every 20 ms. The load average is
printed with the table: on a busy machine, read the ratios, not the seconds.

Targets (issue #15): hash ≥ 0.9× `sha256sum` (2 processes) in throughput; a no-op hash ≤ 10 % of a
full one; check ≥ 2,000 images/s on 2 cores within 2 GB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from scale_dataset import build  # noqa: E402

TARGETS = {"hash_vs_sha256sum": 0.9, "noop_share": 0.10, "check_images_per_s": 2000.0}


@dataclass
class Run:
    seconds: float
    peak_mb: float
    cpu_seconds: float = 0.0  # user + system time of the command and every process it waited for


@dataclass
class Row:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Wall time and peak RSS (summed over the process tree) of one command; fails loudly."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    return Run(seconds, peak / 2**20, cpu)


def vigil_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from vigil.cli import app; app()", *args]


def env_for(src: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src), VIGIL_NO_PROGRESS="1")
    env.setdefault("GX_ANALYTICS_ENABLED", "False")
    return env


def sha256sum_cmd(root: Path) -> list[str]:
    # every file, 2 processes, 5,000 files per call: coreutils at its best on 2 cores
    return ["sh", "-c", f"cd '{root}' && find . -type f -print0 | xargs -0 -P2 -n 5000 sha256sum"]


def plain_python_cmd(root: Path) -> list[str]:
    code = (
        "import hashlib, os, sys\n"
        "for d, _, names in os.walk(sys.argv[1]):\n"
        "    for n in names:\n"
        "        with open(os.path.join(d, n), 'rb') as f: hashlib.sha256(f.read()).hexdigest()\n"
    )
    return [sys.executable, "-c", code, str(root)]


def scan_floor_cmd(root: Path) -> list[str]:
    code = (
        "import os, sys\n"
        "stack = [sys.argv[1]]\n"
        "while stack:\n"
        "    with os.scandir(stack.pop()) as it:\n"
        "        for e in it:\n"
        "            stack.append(e.path) if e.is_dir(follow_symlinks=False) else e.stat(follow_symlinks=False)\n"
    )
    return [sys.executable, "-c", code, str(root)]


def stat_floor_c_cmd(root: Path) -> list[str]:
    # GNU find prints each file's size and mtime: one lstat per file from C, 1 process
    return ["sh", "-c", f"find '{root}' -type f -printf '%s %T@\\n' > /dev/null"]


def startup_cmd() -> list[str]:
    # what `vigil data hash` costs before it looks at a file: the interpreter and vigil's CLI
    return [sys.executable, "-c", "import vigil.cli"]


def baseline_src(rev: str, into: Path) -> Path:
    """The baseline revision's src/ (git archive), to run its code on the same files."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def measure(data: Path, work: Path, srcs: dict[str, Path], repeats: int) -> dict[str, Row]:
    n_images = sum(1 for line in (data / "manifest.jsonl").open() if line.strip())
    rows: dict[str, Row] = {}

    def add(name: str, run: Run) -> None:
        rows.setdefault(name, Row(name)).runs.append(run)

    timed(sha256sum_cmd(data))  # untimed: every file in the page cache before the first timing
    for r in range(repeats):
        add("sha256sum, 2 processes", timed(sha256sum_cmd(data)))
        add("plain Python loop, 1 process", timed(plain_python_cmd(data)))
        add("floor: scandir + stat of every file", timed(scan_floor_cmd(data)))
        add("floor in C: find -printf", timed(stat_floor_c_cmd(data)))
        add("startup: python -c 'import vigil.cli'", timed(startup_cmd(), env_for(REPO / "src")))
        for label, src in srcs.items():
            env = env_for(src)
            cache = work / f"cache-{label}-{r}"
            out = work / f"out-{label}"
            out.mkdir(exist_ok=True)
            hash_args = ["data", "hash", str(data), "--cache", str(cache)]
            hash_args += [
                "--files",
                str(out / "files.jsonl"),
                "--metrics",
                str(out / "dataset.json"),
            ]
            add(f"{label}: vigil data hash", timed(vigil_cmd(*hash_args), env))
            add(f"{label}: vigil data hash, nothing changed", timed(vigil_cmd(*hash_args), env))
            if r == 0 or label != "baseline":  # the baseline's slow check: once is enough
                add(f"{label}: vigil data check", timed(vigil_cmd("data", "check", str(data)), env))
            split = ["data", "split", str(data), "--out", str(out / "split")]
            split += ["--files", str(out / "files.jsonl"), "--params", str(REPO / "params.yaml")]
            add(f"{label}: vigil data split", timed(vigil_cmd(*split), env))
    rows["_images"] = Row("_images", [Run(float(n_images), 0.0)])
    return rows


def table(rows: dict[str, Row], labels: list[str], files: int) -> str:
    images = int(rows["_images"].seconds)
    coreutils = rows["sha256sum, 2 processes"].seconds
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    lines = [
        f"{images} images, {files} files; {os.cpu_count()} CPUs ({cpu}); load average {load} "
        f"(1, 5, 15 min) at the end",
        "",
        "| step | seconds | CPU s | peak MB | measure | target |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name in ("sha256sum, 2 processes", "plain Python loop, 1 process"):
        row = rows[name]
        lines.append(
            f"| {name} | {row.seconds:.2f} | {row.cpu_seconds:.2f} | {row.peak_mb:.0f} | reference | |"
        )
    floor = rows["floor: scandir + stat of every file"]
    c_floor = rows["floor in C: find -printf"]
    startup = rows["startup: python -c 'import vigil.cli'"]
    lines += [
        f"| floor: scandir + stat of every file (Python, 1 process) | {floor.seconds:.2f} | "
        f"{floor.cpu_seconds:.2f} | | what a no-op cannot beat | |",
        f"| floor in C: `find -printf '%s %T@'` (one stat per file, 1 process) | "
        f"{c_floor.seconds:.2f} | {c_floor.cpu_seconds:.2f} | | "
        f"{c_floor.seconds / coreutils:.0%} of sha256sum's time: no no-op that sees an edit in "
        "place beats it | |",
        f"| startup: `python -c 'import vigil.cli'` | {startup.seconds:.2f} | "
        f"{startup.cpu_seconds:.2f} | {startup.peak_mb:.0f} | in every `vigil` command | |",
    ]
    for label in labels:
        full = rows[f"{label}: vigil data hash"]
        noop = rows[f"{label}: vigil data hash, nothing changed"]
        check = rows[f"{label}: vigil data check"]
        split = rows[f"{label}: vigil data split"]
        cores = os.cpu_count() or 1
        lines += [
            f"| {label}: `vigil data hash` | {full.seconds:.2f} | {full.cpu_seconds:.2f} | "
            f"{full.peak_mb:.0f} | {coreutils / full.seconds:.2f}× sha256sum's throughput | "
            f"≥ {TARGETS['hash_vs_sha256sum']}× |",
            f"| {label}: `vigil data hash`, nothing changed | {noop.seconds:.2f} | "
            f"{noop.cpu_seconds:.2f} | {noop.peak_mb:.0f} | {noop.seconds / full.seconds:.0%} of a "
            f"full hash | ≤ {TARGETS['noop_share']:.0%} |",
            f"| {label}: `vigil data check` | {check.seconds:.2f} | {check.cpu_seconds:.2f} | "
            f"{check.peak_mb:.0f} | {images / check.seconds:.0f} images/s "
            f"({images * cores / check.cpu_seconds:.0f}/s if its CPU time were spread on {cores} "
            f"cores) | ≥ {TARGETS['check_images_per_s']:.0f}/s, ≤ 2048 MB |",
            f"| {label}: `vigil data split` | {split.seconds:.2f} | {split.cpu_seconds:.2f} | "
            f"{split.peak_mb:.0f} | | keep |",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "vigil-scale-100k"
    )
    parser.add_argument("--sequences", type=int, default=2000, help="when generating --data")
    parser.add_argument("--frames", type=int, default=50, help="when generating --data")
    parser.add_argument("--baseline", help="a git revision whose code runs beside this tree's")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--report", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"generating {args.data} …", file=sys.stderr)
        build(args.data, sequences=args.sequences, frames=args.frames)
    files = sum(len(names) for _, _, names in os.walk(args.data))
    with tempfile.TemporaryDirectory(prefix="vigil-scale-bench-") as tmp:
        work = Path(tmp)
        srcs = {"current": REPO / "src"}
        if args.baseline:
            srcs = {"baseline": baseline_src(args.baseline, work / "baseline"), **srcs}
        before = hashlib.sha256((args.data / "manifest.jsonl").read_bytes()).hexdigest()
        rows = measure(args.data, work, srcs, args.repeats)
        outs = [work / f"out-{label}" / "files.jsonl" for label in srcs]
        if len({p.read_bytes() for p in outs}) != 1:
            raise SystemExit("the baseline and the current hash wrote different manifests")
        after = hashlib.sha256((args.data / "manifest.jsonl").read_bytes()).hexdigest()
        assert before == after, "the dataset changed during the benchmark"
    text = table(rows, list(srcs), files)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(
            f"# Scale benchmark\n\n`python benchmarks/scale_benchmark.py {' '.join(argv or sys.argv[1:])}`\n\n"
            + text
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
