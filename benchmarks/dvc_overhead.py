"""DVC's own time around the real graph at scale (issue #15 §1): first full `dvc repro`, no-op repro, status.

    .venv/bin/python benchmarks/dvc_overhead.py --data /tmp/scale100k --report reports/bench/dvc_overhead.md

What it does, in a scratch folder (`--work`, default a new temp dir; nothing outside it is written):

1. `git clone` of `--repo` (default: this checkout; committed files only) and `dvc pull pretrained`
   from the bundled remote, so the `pretrained` stage's output is there and nothing downloads;
2. `data/` becomes a plain copy of `--data` (`cp -r`: the source is only read; DVC protects and
   relinks what it tracks, so a hard-linked copy could change the source's inodes), then `dvc add data`
   (timed: the one-off cost of tracking the dataset, not part of any repro);
3. profiles/ci.yaml (`--profile`) is deep-merged into params.yaml, `--set key=value` on top, and the
   scratch repo commits it all;
4. the first full `dvc repro`, timed as a whole. Each stage command's own wall time comes from a
   `python` shim first on PATH: the stage commands start with `python stages/…`, which the shell
   DVC runs them with resolves through PATH, so the shim (bash: timestamp, the venv's python with
   the same arguments, timestamp) measures exactly the command, from its exec to its exit. DVC
   itself starts from its own entry script, not through PATH, so it is not measured by the shim.
   DVC overhead = repro wall − Σ stage commands; the gap before each command (DVC checking that
   stage's deps, committing the previous stage's outputs, writing dvc.lock) is listed per stage;
5. `--repeats` rounds of a no-op `dvc repro` (nothing changed) and `dvc status data.dvc`,
   interleaved so both see the same machine load; medians and their ratio (target ≤ 1.5);
6. one cProfile (DVC's hidden `--cprofile-dump`) of each, the top functions by cumulative time in
   the report, to say where DVC spends the no-op time.

Every timing comes with the 1-minute load average (`os.getloadavg`) when it started; other jobs on
the machine inflate wall times, so read the table with it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SHIM = """#!/bin/bash
# timing shim for `python stages/<name>.py …` (benchmarks/dvc_overhead.py)
start=$(date +%s.%N)
"{real}" "$@"
rc=$?
end=$(date +%s.%N)
printf '%s\\t%s\\t%s\\t%s\\n' "$start" "$end" "$rc" "$1" >> "{log}"
exit $rc
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def set_dotted(tree: dict[str, Any], dotted: str, raw: str) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = yaml.safe_load(raw)


class Runner:
    def __init__(self, root: Path, env: dict[str, str], log_dir: Path) -> None:
        self.root, self.env, self.log_dir = root, env, log_dir
        self.count = 0

    def run(
        self, args: list[str], name: str, check: bool = True
    ) -> tuple[float, list[tuple[float, str]], int]:
        """Run `args` in the scratch repo; return wall seconds, (timestamp, line) of its merged output, rc."""
        self.count += 1
        lines: list[tuple[float, str]] = []
        log = self.log_dir / f"{self.count:02d}_{name}.log"
        started = time.time()
        proc = subprocess.Popen(
            args,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert proc.stdout is not None

        def pump() -> None:  # timestamps each line as it comes; the log is written as it goes
            assert proc.stdout is not None
            with log.open("w") as handle:
                for line in proc.stdout:
                    now = time.time()
                    lines.append((now, line.rstrip("\n")))
                    handle.write(f"{now - started:9.3f}  {line}")
                    handle.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        rc = proc.wait()
        wall = time.time() - started
        reader.join()
        if check and rc != 0:
            tail = "\n".join(text for _, text in lines[-40:])
            raise SystemExit(f"{' '.join(args)} failed ({rc}); log {log}:\n{tail}")
        return wall, lines, rc


def read_shim(log: Path) -> list[tuple[float, float, int, str]]:
    if not log.is_file():
        return []
    out = []
    for row in log.read_text().splitlines():
        start, end, rc, script = row.split("\t")
        out.append((float(start), float(end), int(rc), script))
    return out


def stage_name(script: str) -> str:
    return Path(script).stem


def top_functions(dump: Path, n: int = 25) -> str:
    stream = io.StringIO()
    stats = pstats.Stats(str(dump), stream=stream)
    stats.strip_dirs().sort_stats("cumulative").print_stats(n)
    text = stream.getvalue()
    start = text.find("   ncalls")
    return text[start:] if start >= 0 else text


def fmt(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="dataset folder to copy into data/ (read only)"
    )
    parser.add_argument(
        "--repo", type=Path, default=REPO, help="git repository to clone (committed files)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=Path("profiles/ci.yaml"),
        help="params overlay (in the repo)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra params (YAML value)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="rounds of no-op repro / status data.dvc"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch folder (must not exist; default: a temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--report", type=Path, default=None, help="markdown report to write")
    parser.add_argument("--no-cprofile", action="store_true", help="skip the cProfile runs")
    args = parser.parse_args(argv)

    data = args.data.resolve()
    if not (data / "images").is_dir():
        raise SystemExit(f"{data}: no images/ folder")
    if args.work is not None:
        if args.work.exists():
            raise SystemExit(f"{args.work}: already exists")
        args.work.mkdir(parents=True)
        work = args.work.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="vigil-dvc-overhead-"))
    root = work / "repo"
    logs = work / "logs"
    logs.mkdir()
    shim_dir, shim_log = work / "shim", work / "stage_times.tsv"
    shim_dir.mkdir()
    shim = shim_dir / "python"
    shim.write_text(SHIM.format(real=sys.executable, log=shim_log))
    shim.chmod(0o755)
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{shim_dir}{os.pathsep}{bindir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",  # line timestamps of DVC's output as it happens
        "DVC_NO_ANALYTICS": "1",
        "VIGIL_NO_PROGRESS": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
    }
    env.pop(
        "PYTHONPATH", None
    )  # the clone's own src/ (the venv's editable install points at the lead's)
    env["PYTHONPATH"] = str(root / "src")
    runner = Runner(root, env, logs)
    rows: list[tuple[str, str, str]] = []  # (what, value, load at start)
    notes: list[str] = []
    print(f"scratch: {work}", flush=True)

    # 1. clone + pretrained
    subprocess.run(["git", "clone", "-q", str(args.repo.resolve()), str(root)], check=True, env=env)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    runner.run(["dvc", "pull", "-q", "pretrained"], "pull_pretrained")

    # 2. the dataset
    t0, l0 = time.time(), load()
    if (root / "data").exists():
        shutil.rmtree(root / "data")
    subprocess.run(["cp", "-r", str(data), str(root / "data")], check=True)
    copy_s = time.time() - t0
    n_images = sum(len(files) for _, _, files in os.walk(root / "data" / "images"))
    print(f"copied {n_images} images in {copy_s:.1f} s", flush=True)
    l_add = load()
    add_s, _, _ = runner.run(["dvc", "add", "-q", "data"], "dvc_add")
    print(f"dvc add data: {add_s:.1f} s (load {l_add})", flush=True)

    # 3. params
    params_path = root / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    deep_merge(params, yaml.safe_load((root / args.profile).read_text()))
    for item in args.set:
        key, _, value = item.partition("=")
        set_dotted(params, key, value)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "bench: data + profile"], cwd=root, check=True, env=env)

    # 4. first full repro
    l_first = load()
    print(f"first dvc repro … (load {l_first})", flush=True)
    first_start = time.time()
    first_s, first_lines, _ = runner.run(["dvc", "repro"], "repro_first")
    first_end = first_start + first_s
    stages = read_shim(shim_log)
    failed = [s for s in stages if s[2] != 0]
    if failed:
        raise SystemExit(f"stage command failed: {failed}")
    commands_s = sum(end - start for start, end, _, _ in stages)
    overhead_s = first_s - commands_s
    ran = [stage_name(s[3]) for s in stages]
    skipped = [text.split("'")[1] for _, text in first_lines if "didn't change, skipping" in text]
    per_stage = []
    previous = first_start
    for start, end, _, script in stages:
        per_stage.append((stage_name(script), start - previous, end - start))
        previous = end
    tail_s = first_end - previous
    print(
        f"first repro {first_s:.1f} s, commands {commands_s:.1f} s, DVC {overhead_s:.1f} s",
        flush=True,
    )

    # 5. no-op rounds, interleaved
    noop, status, status_all = [], [], []
    for i in range(args.repeats):
        before = len(read_shim(shim_log))
        l1 = load()
        wall, lines, _ = runner.run(["dvc", "repro"], f"repro_noop_{i}")
        if len(read_shim(shim_log)) != before or any("Running stage" in t for _, t in lines):
            raise SystemExit(f"no-op repro {i} ran a stage: see {logs}")
        noop.append((wall, l1))
        l2 = load()
        wall2, lines2, rc = runner.run(["dvc", "status", "data.dvc"], f"status_data_{i}")
        status.append((wall2, l2))
        if i == 0:
            notes.append(
                "`dvc status data.dvc` said: " + " / ".join(t for _, t in lines2 if t.strip())[:200]
            )
        l3 = load()
        wall3, _, _ = runner.run(["dvc", "status"], f"status_all_{i}")
        status_all.append((wall3, l3))
        print(
            f"round {i}: no-op repro {wall:.2f} s, status data.dvc {wall2:.2f} s, status {wall3:.2f} s "
            f"(load {l1})",
            flush=True,
        )
    med_noop = statistics.median(w for w, _ in noop)
    med_status = statistics.median(w for w, _ in status)
    med_status_all = statistics.median(w for w, _ in status_all)
    ratio = med_noop / med_status

    # 6. where the no-op time goes
    profiles = {}
    if not args.no_cprofile:
        for name, cmd in (
            ("noop_repro", ["dvc", "repro"]),
            ("status_data", ["dvc", "status", "data.dvc"]),
        ):
            dump = work / f"{name}.prof"
            runner.run([*cmd, "--cprofile-dump", str(dump)], f"cprofile_{name}")
            profiles[name] = top_functions(dump)

    # the report
    def spread(values: list[tuple[float, str]]) -> str:
        return ", ".join(f"{w:.2f}" for w, _ in values)

    rows = [
        ("images", f"{n_images}", ""),
        ("copy into data/ (cp -r, setup)", fmt(copy_s), l0),
        ("dvc add data (one-off, setup)", fmt(add_s), l_add),
        ("first `dvc repro` wall", fmt(first_s), l_first),
        ("stage commands, sum", fmt(commands_s), ""),
        (
            "**DVC overhead** (wall − commands)",
            fmt(overhead_s) + (" ✅" if overhead_s <= 120 else " ❌ (> 120 s)"),
            "",
        ),
        (
            f"no-op `dvc repro`, median of {len(noop)}",
            fmt(med_noop) + f" ({spread(noop)})",
            noop[0][1],
        ),
        (
            f"`dvc status data.dvc`, median of {len(status)}",
            fmt(med_status) + f" ({spread(status)})",
            status[0][1],
        ),
        (
            f"`dvc status` (whole graph), median of {len(status_all)}",
            fmt(med_status_all) + f" ({spread(status_all)})",
            status_all[0][1],
        ),
        (
            "**ratio** no-op repro / status data.dvc",
            f"{ratio:.2f}" + (" ✅" if ratio <= 1.5 else " ❌ (> 1.5)"),
            "",
        ),
    ]
    out = io.StringIO()
    out.write("# DVC overhead at scale (issue #15 §1)\n\n")
    out.write(
        f"Repo {args.repo.resolve()} @ {head}, data {data} ({n_images} images), profile {args.profile}"
        + (f" + {' '.join(args.set)}" if args.set else "")
        + f"; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} cores; `{Path(sys.executable).parent / 'dvc'} --version` "
        + subprocess.run(
            [str(Path(bindir) / "dvc"), "--version"], capture_output=True, text=True
        ).stdout.strip()
        + "\n\n"
    )
    out.write("| measure | value | load avg 1/5/15 min at start |\n|---|---|---|\n")
    for what, value, ld in rows:
        out.write(f"| {what} | {value} | {ld} |\n")
    out.write(
        "\n## First repro, per stage\n\nGap = from the previous command's exit (or the start of `dvc repro`)"
        " to this command's start: DVC committing the previous stage's outputs, writing dvc.lock, checking"
        " this stage's deps and removing its old outputs.\n\n"
    )
    out.write("| stage | DVC gap before | command |\n|---|---|---|\n")
    for name, gap, cmd in per_stage:
        out.write(f"| {name} | {fmt(gap)} | {fmt(cmd)} |\n")
    out.write(f"| (after the last command) | {fmt(tail_s)} | |\n")
    out.write(f"| **total** | **{fmt(overhead_s)}** | **{fmt(commands_s)}** |\n\n")
    out.write(
        f"Stages run: {', '.join(ran)}; skipped (unchanged): {', '.join(skipped) or 'none'}.\n\n"
    )
    for note in notes:
        out.write(f"- {note}\n")
    for name, text in profiles.items():
        out.write(f"\n## cProfile: {name} (top by cumulative time)\n\n```\n{text.rstrip()}\n```\n")
    out.write(f"\nLogs (timestamped DVC output): {logs}\n")
    report = out.getvalue()
    print(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report)
    (work / "result.json").write_text(
        json.dumps(
            {
                "first_repro_s": first_s,
                "commands_s": commands_s,
                "overhead_s": overhead_s,
                "per_stage": per_stage,
                "tail_s": tail_s,
                "noop": noop,
                "status_data": status,
                "status_all": status_all,
                "ratio": ratio,
                "dvc_add_s": add_s,
                "copy_s": copy_s,
                "images": n_images,
            },
            indent=1,
        )
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
