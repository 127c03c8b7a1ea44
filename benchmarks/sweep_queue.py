"""Sweeps in parallel: a small grid on a profile through `dvc exp run --queue`, `dvc queue start -j N`.

For each `--jobs` value, in a fresh scratch clone of the repository (its own DVC cache, pulled from
the clone's remote, so neither the caller's workspace and experiments nor one round's run cache
touches another): queue every point of the grid (`dvc exp run --queue -n NAME <profile's -S args>
-S key=value …`), `dvc queue start -j N`, wait until `dvc queue status` shows nothing queued or
running, take the wall time, check that every experiment landed in `dvc exp show --json` as a
success with every `--metric` in its metrics, then remove them (`dvc exp remove --all-commits`,
`dvc queue remove --all`) and the clone. Prints a Markdown table (jobs, experiments, wall s, s per
experiment, speed-up vs the -j 1 round, CPU, load average) and writes it to `--report`. Exits 1
when an experiment failed, is missing or lacks a metric; 2 on bad arguments.

    python benchmarks/sweep_queue.py --profile profiles/ci.yaml \
        --grid train.imgsz=64,128 --grid distill.dis=0.0,6.0 --jobs 1 2 \
        --report reports/bench/sweep_queue.md

The clone is of the repository's committed HEAD: commit the profile (and anything else the sweep
needs) first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from vigil.offline import OFFLINE_ENV  # noqa: E402  (the same switches the pipeline sets)

RUN_ENV = {**OFFLINE_ENV, "VIGIL_NO_PROGRESS": "1"}
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "sweep",
    "GIT_AUTHOR_EMAIL": "sweep@localhost",
    "GIT_COMMITTER_NAME": "sweep",
    "GIT_COMMITTER_EMAIL": "sweep@localhost",
}
ACTIVE = ("Queued", "Running")  # `dvc queue status` states of a task not finished yet


class SweepError(Exception):
    """A sweep that cannot be judged (bad grid, a DVC command failing, a timeout)."""


# ---------------------------------------------------------------- pure logic (tests/test_sweep_queue.py)


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    """`["train.lr0=0.001,0.01", "distill.dis=0,6"]` → `[("train.lr0", ["0.001", "0.01"]), …]`.

    Each spec is `dotted.key=v1,v2,…` (values in `dvc exp run -S` syntax, split on commas: a list
    value cannot be a grid axis here). A key given twice, an empty key or value is an error.
    """
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key.lstrip("+") or key.startswith("-") or " " in key:
            raise SweepError(f"grid axis {spec!r}: expected dotted.key=v1,v2,…")
        split = [v.strip() for v in values.split(",")]
        if not split or any(not v for v in split):
            raise SweepError(f"grid axis {spec!r}: an empty value")
        if len(set(split)) != len(split):
            raise SweepError(f"grid axis {spec!r}: a value repeated")
        if key in (k for k, _ in axes):
            raise SweepError(f"grid axis {key!r} given twice")
        axes.append((key, split))
    if not axes:
        raise SweepError("the grid is empty: give --grid key=v1,v2 at least once")
    return axes


def unknown_keys(axes: list[tuple[str, list[str]]], params: dict[str, Any]) -> list[str]:
    """Grid keys params.yaml does not have (a `+key` adds one, as in `dvc exp run -S +key=…`)."""
    from vigil.profiles import flatten

    known = set(flatten(params))
    return [k for k, _ in axes if not k.startswith("+") and k not in known]


def expand_grid(axes: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every point of the grid (the cartesian product), the first axis varying slowest."""
    keys = [k for k, _ in axes]
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
    ]


def set_args(point: dict[str, str]) -> list[str]:
    """`-S key=value` for every key of one grid point (after the profile's, so these win)."""
    return [arg for key, value in point.items() for arg in ("-S", f"{key}={value}")]


def exp_names(prefix: str, count: int) -> list[str]:
    """Experiment names (valid git ref components): `<prefix>-0`, `<prefix>-1`, …"""
    return [f"{prefix}-{i}" for i in range(count)]


def dig_metric(metrics: dict[str, Any], dotted: str) -> Any:
    """`evaluate.student.map50` in one revision's `metrics` block of `dvc exp show --json`.

    The first part names the metrics file by its stem (metrics/evaluate.json), as gate metrics do.
    None when the file or a key is missing.
    """
    stem, _, rest = dotted.partition(".")
    for path, block in (metrics or {}).items():
        if Path(path).stem != stem:
            continue
        value: Any = (block or {}).get("data")
        for part in rest.split(".") if rest else []:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value
    return None


@dataclass
class ExpRow:
    """One experiment as `dvc exp show --json` shows it."""

    name: str
    rev: str | None = None
    state: str | None = None
    timestamp: str | None = None  # the experiment commit's time (local, ISO): when it finished
    error: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def _params_at(params: dict[str, Any], dotted: str) -> Any:
    value: Any = ((params or {}).get("params.yaml") or {}).get("data")
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def parse_exp_show(shown: Any, metrics: list[str], keys: list[str]) -> dict[str, ExpRow]:
    """Name → ExpRow for every experiment of every baseline in `dvc exp show --json` output.

    `state` is the queue executor's (success, failed, queued, running) or "success" when DVC kept
    no executor record and the revision carries no error; `values` holds `metrics`, `params` `keys`.
    """
    if not isinstance(shown, list):
        raise SweepError("`dvc exp show --json` did not give a list of revisions")
    rows: dict[str, ExpRow] = {}
    for baseline in shown:
        for exp in (baseline or {}).get("experiments") or []:
            name = exp.get("name")
            revs = exp.get("revs") or []
            head = revs[0] if revs else {}
            executor = exp.get("executor") or {}
            error = head.get("error")
            data = head.get("data") or {}
            row = ExpRow(
                name=str(name or head.get("name") or head.get("rev")),
                rev=head.get("rev"),
                timestamp=data.get("timestamp"),
                state=executor.get("state") or ("failed" if error else "success"),
                error=(error.get("msg") if isinstance(error, dict) else error) or None,
                values={m: dig_metric(data.get("metrics") or {}, m) for m in metrics},
                params={k: _params_at(data.get("params") or {}, k.lstrip("+")) for k in keys},
            )
            rows[row.name] = row
    return rows


def problems(rows: dict[str, ExpRow], names: list[str], metrics: list[str]) -> list[str]:
    """Why this round does not count: an experiment missing, not a success, or without a metric."""
    out = []
    for name in names:
        row = rows.get(name)
        if row is None:
            out.append(f"{name}: not in `dvc exp show`")
        elif row.state != "success":
            out.append(f"{name}: {row.state}" + (f" ({row.error})" if row.error else ""))
        else:
            for metric in metrics:
                value = row.values.get(metric)
                if not isinstance(value, int | float) or isinstance(value, bool):
                    out.append(f"{name}: no numeric {metric} in its metrics (got {value!r})")
                elif not math.isfinite(value):
                    out.append(f"{name}: {metric} is {value!r}")
    return out


def same_value(shown: Any, given: str) -> bool:
    """Whether a param `dvc exp show` reports is the grid value given as `-S` text (0.010 == 0.01)."""
    if isinstance(shown, bool) or shown is None:
        return str(shown).lower() == given.strip().lower() or (shown is None and given == "null")
    if isinstance(shown, int | float):
        try:
            return float(given) == float(shown)
        except ValueError:
            return False
    return str(shown) == given.strip().strip("'\"")


def active_tasks(status_text: str, names: list[str]) -> list[str]:
    """Names of our tasks `dvc queue status` still shows queued or running."""
    active = []
    for line in status_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in names and any(state in parts for state in ACTIVE):
            active.append(parts[1])
    return active


@dataclass
class Round:
    """One `dvc queue start -j N` over the whole grid."""

    jobs: int
    names: list[str]
    wall_s: float
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    load_samples: list[float]
    rows: dict[str, ExpRow]
    problems: list[str]
    started: datetime | None = None  # local wall clock at `dvc queue start` (as exp timestamps are)

    def finished_s(self, name: str) -> float | None:
        """Seconds from `dvc queue start` to the experiment's commit (its finish), to the second."""
        row = self.rows.get(name)
        if self.started is None or row is None or not row.timestamp:
            return None
        try:
            done = datetime.fromisoformat(row.timestamp)
        except ValueError:
            return None
        return (done - self.started.replace(microsecond=0)).total_seconds()

    @property
    def mean_load(self) -> float:
        return sum(self.load_samples) / len(self.load_samples) if self.load_samples else math.nan


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def render(rounds: list[Round], info: dict[str, Any], points: list[dict[str, str]]) -> str:
    """The Markdown report: the timing table, the machine, and every experiment's metric per round."""
    first = next((r for r in rounds if r.jobs == 1), rounds[0] if rounds else None)
    base = first.wall_s if first else math.nan
    lines = [
        "# Queued sweep: `dvc queue start -j N` wall time",
        "",
        f"Written by `{info['command']}` on {info['date']} (repository commit `{info['commit']}`).",
        "",
        f"Profile `{info['profile']}`; grid {info['grid']} = {len(points)} experiments per round; "
        f"metrics checked: {', '.join(f'`{m}`' for m in info['metrics'])}. "
        "Each round runs in its own scratch clone with its own DVC cache (no run cache shared between rounds).",
        "",
        f"Machine: {info['cpu']}, {info['cores']} logical CPUs ({info['usable']} usable), "
        f"{info['python']}, DVC {info['dvc']}. Load average is the machine's (other jobs included). "
        f"Wall time ends at the first `dvc queue status` (every {info.get('poll', '?')} s) that shows "
        "none of the round's tasks queued or running; `done at s` below is each experiment's commit.",
        "",
        "| jobs | experiments | ok | wall s | wall s / experiment | speed-up vs -j "
        f"{first.jobs if first else 1} | load 1-min at start → end | mean load while running |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rounds:
        ok = len(r.names) - len(r.problems)
        lines.append(
            f"| {r.jobs} | {len(r.names)} | {ok} | {r.wall_s:.1f} | {r.wall_s / len(r.names):.1f} | "
            f"{base / r.wall_s:.2f}x | {r.load_start[0]:.2f} → {r.load_end[0]:.2f} | "
            f"{r.mean_load:.2f} |"
        )
    metrics = info["metrics"]
    lines += [
        "",
        "## Per experiment",
        "",
        "`done at s`: seconds from `dvc queue start` to the experiment's commit (to the second).",
        "",
    ]
    keys = list(points[0]) if points else []
    header = [*keys, *(f"-j {r.jobs}: {h}" for r in rounds for h in [*metrics, "done at s"])]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, point in enumerate(points):
        cells = [f"`{point[k]}`" for k in keys]
        for r in rounds:
            row = r.rows.get(r.names[i])
            ok = row is not None and row.state == "success"
            cells += [_fmt(row.values.get(m)) if row and ok else "FAILED" for m in metrics]
            cells.append(_fmt(r.finished_s(r.names[i])) if ok else "—")
        lines.append("| " + " | ".join(cells) + " |")
    same = [
        all(
            (a := r.rows.get(r.names[i])) is not None
            and (b := rounds[0].rows.get(rounds[0].names[i])) is not None
            and a.values == b.values
            for r in rounds
        )
        for i in range(len(points))
    ]
    if len(rounds) > 1:
        lines += [
            "",
            "Same metrics in every round for every grid point (seeded CPU training; runs in parallel "
            f"must not disturb each other): **{'yes' if all(same) else 'no'}**.",
        ]
    bad = [p for r in rounds for p in r.problems]
    lines += ["", "Problems: " + ("; ".join(bad) if bad else "none") + "."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- running DVC (slow)


def env_for(clone: Path) -> dict[str, str]:
    env = {**os.environ, **RUN_ENV}
    for key, value in GIT_IDENTITY.items():
        env.setdefault(key, value)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(clone / "src")  # the stage scripts import the clone's vigil
    return env


def sh(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SweepError(
            f"`{' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def start_workers(clone: Path, jobs: int, env: dict[str, str]) -> None:
    """`dvc queue start -j N`, its output to a file, never to a pipe of ours.

    The Celery workers it spawns are daemons that inherit its stdout and stderr: captured through a
    pipe, `subprocess.run` would wait for them to exit (after the queue is drained and, for all but
    the first worker, not always then), and the wall time would include that wait.
    """
    log = clone / ".dvc" / "tmp" / "sweep_queue_start.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        code = subprocess.run(
            ["dvc", "queue", "start", "-j", str(jobs)],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    if code != 0:
        raise SweepError(f"`dvc queue start -j {jobs}` failed ({code}):\n{log.read_text()}")


def scratch_clone(repo: Path, dest: Path, env: dict[str, str]) -> None:
    """A clone of `repo`'s HEAD with its own DVC cache, pulled from the clone's default remote."""
    sh(["git", "clone", "-q", str(repo), str(dest)], dest.parent, env)
    sh(["dvc", "pull", "--allow-missing", "-q"], dest, env)


def run_round(
    repo: Path,
    workdir: Path,
    jobs: int,
    profile_args: list[str],
    points: list[dict[str, str]],
    metrics: list[str],
    poll_s: float,
    timeout_s: float,
    keep: bool,
) -> Round:
    clone = workdir / f"j{jobs}"
    env = env_for(clone)
    scratch_clone(repo, clone, env)
    names = exp_names(f"sweep-j{jobs}", len(points))
    try:
        for name, point in zip(names, points, strict=True):
            sh(
                ["dvc", "exp", "run", "--queue", "-n", name, *profile_args, *set_args(point)],
                clone,
                env,
            )
        load_start = os.getloadavg()
        started = datetime.now()
        start = time.monotonic()
        start_workers(clone, jobs, env)
        samples: list[float] = []
        while True:
            time.sleep(poll_s)
            samples.append(os.getloadavg()[0])
            if not active_tasks(sh(["dvc", "queue", "status"], clone, env), names):
                break
            if time.monotonic() - start > timeout_s:
                raise SweepError(f"-j {jobs}: not finished after {timeout_s:.0f} s")
        wall = time.monotonic() - start
        load_end = os.getloadavg()
        shown = json.loads(sh(["dvc", "exp", "show", "--json"], clone, env))
        keys = list(points[0]) if points else []
        rows = parse_exp_show(shown, metrics, keys)
        found = problems(rows, names, metrics)
        for name, point in zip(names, points, strict=True):  # the params it ran with are the grid's
            row = rows.get(name)
            if row and row.state == "success":
                wrong = {
                    k: row.params.get(k)
                    for k, v in point.items()
                    if not same_value(row.params.get(k), v)
                }
                if wrong:
                    found.append(f"{name}: ran with {wrong}, queued with {point}")
        if found:
            logs = {
                n: sh(["dvc", "queue", "logs", n], clone, env, check=False)[-3000:] for n in names
            }
            for name in names:
                if any(p.startswith(f"{name}:") for p in found):
                    print(f"--- {name} log (tail) ---\n{logs[name]}", file=sys.stderr)
        # clean up the way a user would, and check it took
        sh(["dvc", "exp", "remove", "--all-commits"], clone, env)
        sh(["dvc", "queue", "remove", "--all"], clone, env)
        left = sh(["dvc", "exp", "list", "--all-commits", "--name-only"], clone, env).split()
        if left:
            found.append(f"-j {jobs}: `dvc exp remove --all-commits` left {left}")
        return Round(jobs, names, wall, load_start, load_end, samples, rows, found, started)
    finally:
        sh(["dvc", "queue", "stop", "--kill"], clone, env, check=False)
        if not keep:
            remove_clone(clone)


def processes_in(folder: Path) -> list[int]:
    """Pids whose working directory lies inside `folder` (Linux /proc; empty elsewhere)."""
    root = folder.resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == root or root in cwd.parents:
            found.append(int(entry.name))
    return [pid for pid in found if pid != os.getpid()]


def remove_clone(clone: Path, wait_s: float = 60.0) -> None:
    """Remove a scratch clone once the queue's Celery workers have left it.

    `dvc queue stop --kill` returns before its daemons exit, and a worker still writing under
    `.dvc/tmp` makes `shutil.rmtree` leave files behind; so wait for them, then SIGKILL what is
    left, then remove (retrying, since a dying worker may still flush a file).
    """
    deadline = time.monotonic() + wait_s
    while processes_in(clone) and time.monotonic() < deadline:
        time.sleep(1.0)
    for pid in processes_in(clone):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for _ in range(10):
        shutil.rmtree(clone, ignore_errors=True)
        if not clone.exists():
            return
        time.sleep(1.0)
    raise SweepError(f"could not remove the scratch clone {clone}: remove it by hand")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable": usable}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the vigil repository to clone")
    parser.add_argument("--profile", type=Path, default=Path("profiles/ci.yaml"))
    parser.add_argument(
        "--grid",
        action="append",
        default=None,
        help="an axis: dotted.key=v1,v2 (repeat for more axes; default: "
        "train.imgsz=64,128 and distill.dis=0.0,6.0)",
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--metric",
        nargs="+",
        default=["evaluate.student.map50", "evaluate.teacher.map50"],
        help="metrics every experiment must have (dotted, first part = metrics/<name>.json)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=10.0,
        help="seconds between `dvc queue status` calls (each costs about half a CPU second)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per round")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch clones")
    parser.add_argument(
        "--report", type=Path, default=None, help="Markdown file to write the table to"
    )
    args = parser.parse_args(argv)

    from vigil.errors import VigilError
    from vigil.profiles import read_tree, set_arguments

    repo = args.repo.resolve()
    try:
        axes = parse_grid(args.grid or ["train.imgsz=64,128", "distill.dis=0.0,6.0"])
        points = expand_grid(axes)
        profile = args.profile if args.profile.is_absolute() else repo / args.profile
        profile_args = set_arguments(profile, repo / "params.yaml", shell=False)
        unknown = unknown_keys(axes, read_tree(repo / "params.yaml"))
        if unknown:
            raise SweepError(f"grid keys not in params.yaml: {unknown} (`+key` adds a new one)")
        if any(j < 1 for j in args.jobs):
            raise SweepError("--jobs must be >= 1")
    except (SweepError, VigilError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (repo / ".git").exists():
        print(f"error: {repo} is not a git repository", file=sys.stderr)
        return 2
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=repo,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if dirty:
        print(
            "note: uncommitted changes are not part of the sweep (it clones HEAD)", file=sys.stderr
        )
    dvc_version = subprocess.run(
        ["dvc", "--version"], capture_output=True, text=True, env=env_for(repo)
    ).stdout.strip()
    info = {
        "command": "python benchmarks/sweep_queue.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "profile": args.profile,
        "grid": " × ".join(f"`{k}` ∈ {{{', '.join(v)}}}" for k, v in axes),
        "metrics": args.metric,
        "poll": args.poll,
        "python": f"Python {platform.python_version()}",
        "dvc": dvc_version,
        **machine(),
    }
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vigil-sweep-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rounds: list[Round] = []
    try:
        for jobs in args.jobs:
            print(f"-j {jobs}: {len(points)} experiments in {workdir / f'j{jobs}'} …", flush=True)
            r = run_round(
                repo,
                workdir,
                jobs,
                profile_args,
                points,
                args.metric,
                args.poll,
                args.timeout,
                args.keep,
            )
            print(f"-j {jobs}: {r.wall_s:.1f} s, problems: {r.problems or 'none'}", flush=True)
            rounds.append(r)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = render(rounds, info, points)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    return 1 if any(r.problems for r in rounds) else 0


if __name__ == "__main__":
    sys.exit(main())
