"""A teacher run SIGKILLed after its first epoch at 100k images resumes from epoch 2 (issue #15 §4).

    .venv/bin/python benchmarks/resume_at_scale.py --data /tmp/scale100k \
        --report reports/bench/resume_at_scale.md

1. split lists: `--split DIR` (e.g. a repro's artifacts/split), else `vigil data split` into the work folder;
2. a params.yaml in the work folder: the repository's, with `train:` shrunk so two epochs take minutes
   but every piece of the dataset machinery runs at full size (the split lists of all images, the
   `fraction` sample drawn from them, the run's dataset view, `cache: auto` deciding from the image
   headers): epochs 2, imgsz 64, fraction / val_fraction 0.05, batch 16, workers 0 (`--set` changes more);
3. the `train` stage command (`python stages/train.py …`, as dvc.yaml runs it) in its own process
   group; once the first epoch's checkpoint (last.pt, epoch 0) is on disk, whole and unchanging,
   the group is SIGKILLed (DVC's own fate on a kill: everything under it dies at once);
4. the same command again: it must say it resumes, ultralytics must restart at epoch 2 (not 1),
   finish, and write metrics with `resumed: true` and 2 epochs, and best.pt.

Prints (and writes to `--report`) both runs' wall times, the cache chosen and why, the peak RSS of
each run's process tree (sampled every 0.5 s) and the load averages. Exit 1 if it did not resume.
The dataset is only read (the run's view is links in the work folder); its top-level mtimes are
compared before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tree_rss(pid: int) -> int:
    """Resident bytes of the process and its descendants (0 once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


class Run:
    """The train stage command in its own session; output collected with timestamps, RSS sampled."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.started = time.time()
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.peak_rss = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._reader.start()
        self._sampler.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.log.write(f"{time.time() - self.started:9.2f}  {line}")
            self.log.flush()

    def _sample(self) -> None:
        while self.proc.poll() is None:
            self.peak_rss = max(self.peak_rss, tree_rss(self.proc.pid))
            time.sleep(0.5)

    def kill_group(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> tuple[int, float]:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        self.log.close()
        return rc, time.time() - self.started

    def grep(self, pattern: str) -> list[str]:
        return [line for line in self.lines if re.search(pattern, line)]


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a last.pt holds (weights_only load: our own run's file)."""
    sys.path.insert(0, str(REPO / "src"))
    from vigil.models.yolo import load_checkpoint_dict

    try:
        return int(load_checkpoint_dict(path).get("epoch", -1))
    except Exception:  # half-written or unreadable: report it as such
        return None


def stable_file(path: Path, settle: float = 1.0) -> bool:
    """`path` exists and its size and mtime did not change over `settle` seconds (not mid-write)."""
    try:
        first = path.stat()
        time.sleep(settle)
        second = path.stat()
    except FileNotFoundError:
        return False
    return (first.st_size, first.st_mtime_ns) == (
        second.st_size,
        second.st_mtime_ns,
    ) and first.st_size > 0


def data_stamp(data: Path) -> dict[str, int]:
    names = ["images", "labels", "manifest.jsonl", "classes.txt", "."]
    return {n: (data / n).stat().st_mtime_ns for n in names if (data / n).exists()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (only read)")
    parser.add_argument(
        "--split", type=Path, default=None, help="folder with train.txt / val.txt for --data"
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="work folder (default: a new temp dir)"
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=REPO / "models/pretrained/yolov8s_fall.pt",
        help="init weights (skipped when the file is absent: random init)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more train.* params (YAML value), e.g. --set epochs=3",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each run may take")
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)

    data = args.data.resolve()
    work = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="vigil-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "VIGIL_NO_PROGRESS": "1",
        "PYTHONPATH": str(REPO / "src"),
    }
    before = data_stamp(data)
    notes: list[str] = []

    # 1. split lists
    if args.split is None:
        t0 = time.time()
        split = work / "split"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "vigil.cli",
                "data",
                "split",
                str(data),
                "--out",
                str(split),
                "--params",
                str(REPO / "params.yaml"),
            ],
            check=True,
            env=env,
            cwd=REPO,
        )
        notes.append(f"split: `vigil data split` {time.time() - t0:.1f} s")
    else:
        split = args.split.resolve()
    counts = {name: sum(1 for _ in (split / f"{name}.txt").open()) for name in ("train", "val")}

    # 2. params
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    train: dict[str, Any] = params["train"]
    train.update(
        epochs=2,
        imgsz=64,
        fraction=0.05,
        val_fraction=0.05,
        batch=16,
        nbs=16,
        workers=0,
        cache="auto",
        warmup_epochs=0.0,
    )
    train["augment"]["close_mosaic"] = 0
    for item in args.set:
        key, _, value = item.partition("=")
        node = train
        *parents, leaf = key.removeprefix("train.").split(".")
        for part in parents:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    epochs = int(train["epochs"])
    params_path = work / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run_dir = work / "run"
    last = run_dir / "ultralytics" / "weights" / "last.pt"
    cmd = [
        sys.executable,
        "stages/train.py",
        "--data",
        str(data),
        "--split",
        str(split),
        "--weights",
        str(work / "best.pt"),
        "--run-dir",
        str(run_dir),
        "--metrics",
        str(work / "train.json"),
        "--live",
        str(work / "live"),
        "--params",
        str(params_path),
    ]
    if args.init.is_file():
        cmd[2:2] = ["--init", str(args.init.resolve())]
    else:
        notes.append(f"init {args.init} absent: random init")
    print("$ " + " ".join(cmd), flush=True)

    # 3. first run, killed after epoch 1's checkpoint
    load_first = load()
    first = Run(cmd, env, work / "run1.log")
    killed_at = None
    deadline = time.time() + args.timeout
    while time.time() < deadline and first.proc.poll() is None:
        if last.is_file() and stable_file(last):
            killed_at = time.time() - first.started
            first.kill_group()
            break
        time.sleep(0.5)
    rc1, wall1 = first.wait(timeout=60)
    epoch_on_disk = checkpoint_epoch(last) if last.is_file() else None
    print(
        f"run 1: rc {rc1} after {wall1:.1f} s (SIGKILL at {killed_at}); last.pt epoch {epoch_on_disk}",
        flush=True,
    )
    ok_kill = killed_at is not None and rc1 == -signal.SIGKILL

    # 4. the same command again
    load_second = load()
    second = Run(cmd, env, work / "run2.log")
    rc2, wall2 = second.wait(timeout=args.timeout)
    metrics = (
        json.loads((work / "train.json").read_text()) if (work / "train.json").is_file() else {}
    )
    said_resume = bool(second.grep(r"train: resuming the stopped run"))
    resumed_from = second.grep(r"Resuming training .* from epoch")
    epoch_match = re.search(r"from epoch (\d+) to (\d+)", resumed_from[0]) if resumed_from else None
    start_epoch = int(epoch_match.group(1)) if epoch_match else None
    rows = []
    results = run_dir / "ultralytics" / "results.csv"
    if results.is_file():
        rows = [line.split(",")[0].strip() for line in results.read_text().splitlines()[1:]]
    live_tsv = work / "live" / "plots" / "metrics" / "epoch_seconds.tsv"
    live_steps = (
        [int(float(r.split("\t")[0])) for r in live_tsv.read_text().splitlines()[1:]]
        if live_tsv.is_file()
        else []
    )
    if len(rows) != len(set(rows)):
        notes.append(
            f"results.csv epochs {rows}: run 1 logged an epoch whose checkpoint it did not live to save"
        )
    cache_lines = first.grep(r"train: cache ") or second.grep(r"train: cache ")
    after = data_stamp(data)
    checks = {
        "first run killed by SIGKILL after last.pt": ok_kill,
        "last.pt held epoch 1 (index 0) when killed": epoch_on_disk == 0,
        "second run said it resumes": said_resume,
        "ultralytics resumed from epoch 2": start_epoch == 2,
        "second run exited 0": rc2 == 0,
        f"metrics: resumed true, {epochs} epochs run": metrics.get("resumed") is True
        and metrics.get("epochs_run") == epochs,
        "best.pt written": (work / "best.pt").is_file(),
        f"results.csv: epochs 1..{epochs} (a row repeated by the resume allowed)": sorted(
            set(rows), key=int
        )
        == [str(e) for e in range(1, epochs + 1)],
        f"DVCLive curves: steps 0..{epochs - 1} once each": live_steps == list(range(epochs)),
        "dataset untouched (top-level mtimes)": before == after,
    }
    ok = all(checks.values())

    lines = [
        "# Resume after SIGKILL at scale (issue #15 §4)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, data {data} "
        f"(split: {counts['train']} train, {counts['val']} val listed), work {work}",
        "",
        "```",
        "$ " + " ".join(cmd),
        "train params: "
        + json.dumps(
            {
                k: train[k]
                for k in (
                    "model",
                    "epochs",
                    "imgsz",
                    "batch",
                    "fraction",
                    "val_fraction",
                    "workers",
                    "cache",
                    "device",
                )
            }
        ),
        "```",
        "",
        "| run | wall | peak RSS (process tree) | load avg 1/5/15 at start | what happened |",
        "|---|---|---|---|---|",
        f"| 1 | {wall1:.1f} s | {first.peak_rss / 2**30:.2f} GiB | {load_first} | SIGKILL to the process group "
        f"{'at ' + format(killed_at, '.1f') + ' s' if killed_at else 'never (no last.pt)'}, rc {rc1}; "
        f"last.pt epoch index {epoch_on_disk} |",
        f"| 2 | {wall2:.1f} s | {second.peak_rss / 2**30:.2f} GiB | {load_second} | rc {rc2}; "
        f"{resumed_from[0].strip() if resumed_from else 'no resume line'} |",
        "",
        f"Cache: `{cache_lines[0].strip() if cache_lines else 'no cache line'}`"
        + (f" (metrics: {json.dumps(metrics.get('cache'))})" if metrics.get("cache") else ""),
        "",
        f"Metrics: epochs_run {metrics.get('epochs_run')}, resumed {metrics.get('resumed')}, "
        f"seconds_per_epoch {metrics.get('seconds_per_epoch')}, wall_seconds (run 2) {metrics.get('wall_seconds')}, "
        f"val {json.dumps(metrics.get('val'))}",
        "",
        "| check | |",
        "|---|---|",
        *[f"| {name} | {'✅' if passed else '❌'} |" for name, passed in checks.items()],
        "",
        *[f"- {note}" for note in notes],
        f"- logs: {work / 'run1.log'}, {work / 'run2.log'}",
        "",
        f"**{'RESUMED' if ok else 'DID NOT RESUME'}**",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
