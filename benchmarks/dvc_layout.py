"""DVC at a million files: wall time of `dvc add`, `dvc status`, `dvc push`, `dvc pull` per layout.

    .venv/bin/python benchmarks/dvc_layout.py --n 1000000 --s3-n 100000 --jobs 8 \\
        --report reports/bench/dvc_layout.md

The tree mirrors vigil's canonical layout: N/2 tiny images `images/sNNN/NNNNNNN.jpg` (a JPEG start
marker and ~40 seeded random bytes: every file distinct, so DVC stores N objects) and N/2 labels
`labels/sNNN/NNNNNNN.txt` (one YOLO box), spread over `--folders` session folders. The same files
are tracked three ways, each in a fresh git + DVC repo under a temporary folder (removed at the end):

* `flat`   the whole tree as one output: `dvc add data` (what vigil's data.dvc does today);
* `shards` one output per session folder: `dvc add data/images/s000 data/labels/s000 …`
           (2 × folders `.dvc` files beside the folders);
* `tar`    one uncompressed tar per session folder (its images and labels) plus `index.jsonl`
           (member → shard, byte offset, size), as one output `dvc add data/shards`.

Per layout: `dvc add` (for `tar`, packing the tars is timed apart as `prepare`), a no-op
`dvc status`, then per remote `dvc push -j J`, delete the workspace copy and the whole cache,
`dvc pull -j J` (the pulled tree is checked: same file count and bytes). Then one increment: a new
session folder of N/100 files is added (`add +1%`) and pushed (`push +1%`; `shards` pushes only the
new `.dvc` files, the other layouts push everything, which is what they can do). Remotes: a local
folder, and moto's S3 server on 127.0.0.1 (dvc-s3 with `endpointurl` and fake credentials), which
at 1M objects takes hours, so `--s3-n` measures S3 (and the local remote again) on a smaller tree
in the same run.

Other jobs may share the machine: the 1-minute load average is read before every timed command
and the table gives its range per row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vigil.data import shards

BIN = Path(sys.executable).parent
BUCKET = "vigil-bench"
LAYOUTS: tuple[str, ...] = ("flat", "shards", "tar")
COLUMNS: tuple[str, ...] = ("prepare", "add", "status", "push", "pull", "add +1%", "push +1%")


# --- the tree -------------------------------------------------------------------------------------


def folder_name(index: int) -> str:
    return f"s{index:03d}"


def image_bytes(rng: random.Random, index: int) -> bytes:
    """A tiny distinct 'image': JPEG start marker, the index, ~40 seeded random bytes, end marker."""
    return (
        b"\xff\xd8\xff\xe0"
        + index.to_bytes(4, "big")
        + rng.randbytes(32 + rng.randrange(16))
        + b"\xff\xd9"
    )


def label_text(rng: random.Random, index: int) -> str:
    w, h = rng.uniform(0.01, 0.5), rng.uniform(0.01, 0.5)
    cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
    return f"{index % 3} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def write_folder(data: Path, folder: str, first: int, count: int, seed: int) -> int:
    """`count` images and their labels in `images/<folder>/`, `labels/<folder>/`; image ids from `first`.

    Seeded per folder, so a folder's bytes do not depend on how many folders came before it."""
    rng = random.Random(f"{seed}:{folder}")
    images, labels = data / "images" / folder, data / "labels" / folder
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for index in range(first, first + count):
        name = f"{index:07d}"
        (images / f"{name}.jpg").write_bytes(image_bytes(rng, index))
        (labels / f"{name}.txt").write_text(label_text(rng, index))
    return 2 * count


def generate_tree(data: Path, n_files: int, folders: int, seed: int = 0) -> list[str]:
    """N files (N/2 images + N/2 labels) over `folders` session folders; returns the folder names."""
    if n_files < 2 or n_files % 2:
        raise ValueError(f"n_files must be even and at least 2, got {n_files}")
    n_images = n_files // 2
    folders = max(1, min(folders, n_images))
    names = []
    first = 0
    for i in range(folders):
        count = n_images // folders + (1 if i < n_images % folders else 0)
        write_folder(data, folder_name(i), first, count, seed)
        names.append(folder_name(i))
        first += count
    return names


def tree_stats(root: Path) -> tuple[int, int]:
    """(files, bytes) under root, by stat only."""
    files = size = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as listing:
            for item in listing:
                if item.is_dir(follow_symlinks=False):
                    stack.append(item.path)
                else:
                    files += 1
                    size += item.stat(follow_symlinks=False).st_size
    return files, size


def pack_tars(data: Path, folders: list[str], out: Path) -> int:
    """One uncompressed tar per folder (its images then its labels) and `index.jsonl` in `out`.

    The tars are `vigil.data.shards`' (deterministic, PAX, regular files only); an index line:
    {"path": "images/s000/0000001.jpg", "shard": "s000.tar", "offset": 1536, "size": 45,
    "sha256": "…"} (offset of the member's bytes in the tar), sorted by path, so a reader can seek to
    one file. The loose folders are removed. Returns the number of members."""
    out.mkdir(parents=True, exist_ok=True)
    index: list[shards.Member] = []
    for folder in folders:
        files = [
            (f"{kind}/{folder}/{path.name}", path)
            for kind in ("images", "labels")
            for path in (data / kind / folder).iterdir()
        ]
        index += shards.write_shard(out / f"{folder}.tar", files)
        shutil.rmtree(data / "images" / folder)
        shutil.rmtree(data / "labels" / folder)
    (out / shards.INDEX).write_text(shards.index_text(index))
    return len(index)


def read_member(folder: Path, record: dict[str, object]) -> bytes:
    """The bytes of one file of a tar shard, by its index line (one seek, one read)."""
    return shards.read_member(folder, shards.parse_index_line(record, folder / shards.INDEX, 0))


def outputs(layout: str, folders: list[str]) -> list[str]:
    """The DVC outputs of a layout (paths relative to the repo root)."""
    if layout == "flat":
        return ["data"]
    if layout == "shards":
        return [f"data/{kind}/{f}" for f in folders for kind in ("images", "labels")]
    if layout == "tar":
        return ["data/shards"]
    raise ValueError(f"unknown layout {layout!r}")


# --- commands -------------------------------------------------------------------------------------


def env() -> dict[str, str]:
    out = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        out.pop(key, None)  # the S3 credentials come from .dvc/config.local only
    return out


def run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


@dataclass
class Row:
    layout: str
    remote: str
    n: int
    outs: int = 0
    times: dict[str, float] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    after: Callable[[], object] | None = None  # called after each timed command (saves the report)

    def timed(self, column: str, work) -> object:
        self.loads.append(os.getloadavg()[0])
        start = time.perf_counter()
        result = work()
        self.times[column] = time.perf_counter() - start
        print(
            f"  {self.layout:6s} {self.remote:5s} n={self.n} {column:9s} {self.times[column]:9.1f} s",
            flush=True,
        )
        if self.after is not None:
            self.after()
        return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with the bench bucket; stopped by its own pid."""
    import boto3

    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def init_repo(repo: Path, remote_dir: Path, s3_url: str | None, prefix: str) -> None:
    repo.mkdir(parents=True)
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "config", "core.autostage", "false"], repo)
    # DVC's state database lives in the site cache dir: keep it inside the temporary folder.
    run(["dvc", "config", "--local", "core.site_cache_dir", str(repo.parent / "site-cache")], repo)
    run(["dvc", "remote", "add", "local", str(remote_dir)], repo)
    if s3_url is not None:
        run(["dvc", "remote", "add", "s3", f"s3://{BUCKET}/{prefix}"], repo)
        run(["dvc", "remote", "modify", "s3", "endpointurl", s3_url], repo)
        run(["dvc", "remote", "modify", "--local", "s3", "access_key_id", "testing"], repo)
        run(["dvc", "remote", "modify", "--local", "s3", "secret_access_key", "testing"], repo)


def dvc_add(repo: Path, targets: list[str]) -> None:
    run(["dvc", "add", "-q", *targets], repo)


def wipe(repo: Path, tracked: list[str]) -> None:
    """Delete the workspace copy of every output and the whole DVC cache (not the .dvc files)."""
    for rel in tracked:
        shutil.rmtree(repo / rel, ignore_errors=True)
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)


def measure_layout(
    work: Path,
    layout: str,
    n: int,
    remotes: list[str],
    args: argparse.Namespace,
    s3_url: str | None,
    rows: list[Row],
    save: Callable[[], object] | None = None,
) -> None:
    """Measure one layout at one N; its rows are appended to `rows` as they start (`save` after each
    timed command, so a long run that is stopped still leaves the numbers it has)."""
    base = work / f"{layout}-{n}"
    repo = base / "repo"
    init_repo(repo, base / "remote", s3_url, f"{layout}-{n}")
    data = repo / "data"
    t0 = time.perf_counter()
    folders = generate_tree(data, n, args.folders, args.seed)
    print(
        f"  {layout:6s} n={n}: generated {n} files in {time.perf_counter() - t0:.1f} s", flush=True
    )
    first = Row(layout, remotes[0], n, after=save)
    rows.append(first)
    if layout == "tar":
        first.timed("prepare", lambda: pack_tars(data, folders, data / "shards"))
    tracked = outputs(layout, folders)
    first.outs = len(tracked)
    first.timed("add", lambda: dvc_add(repo, tracked))
    first.timed("status", lambda: run(["dvc", "status", "-q"], repo))
    expect = tree_stats(data)
    for i, remote in enumerate([] if args.no_transfer else remotes):
        row = first
        if i > 0:
            row = Row(layout, remote, n, first.outs, after=save)
            rows.append(row)
        jobs = ["-j", str(args.jobs), "-r", remote]
        row.timed("push", lambda jobs=jobs: run(["dvc", "push", "-q", *jobs], repo))
        wipe(repo, tracked)
        row.timed("pull", lambda jobs=jobs: run(["dvc", "pull", "-q", *jobs], repo))
        got = tree_stats(data)
        if got != expect:
            raise RuntimeError(
                f"{layout} pulled from {remote}: {got} (files, bytes), expected {expect}"
            )
    # The increment: one new session folder of N/100 files (at least 2).
    new = folder_name(len(folders))
    extra = max(1, n // 200)
    write_folder(data, new, n // 2, extra, args.seed)
    if layout == "flat":
        first.timed("add +1%", lambda: dvc_add(repo, ["data"]))
        push_targets: list[str] = []
    elif layout == "shards":
        targets = [f"data/images/{new}", f"data/labels/{new}"]
        first.timed("add +1%", lambda: dvc_add(repo, targets))
        push_targets = [f"{t}.dvc" for t in targets]
    else:

        def repack() -> None:
            # the new tar, then the index rewritten with its members
            index_path = data / "shards" / "index.jsonl"
            old = index_path.read_text()
            pack_tars(data, [new], data / "shards")
            lines = sorted(
                old.splitlines() + index_path.read_text().splitlines(),
                key=lambda s: json.loads(s)["path"],
            )
            index_path.write_text("".join(line + "\n" for line in lines))
            dvc_add(repo, ["data/shards"])

        first.timed("add +1%", repack)
        push_targets = []
    first.timed(
        "push +1%",
        lambda: run(
            ["dvc", "push", "-q", "-j", str(args.jobs), "-r", remotes[0], *push_targets], repo
        ),
    )
    first.loads.append(os.getloadavg()[0])
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


# --- the report -----------------------------------------------------------------------------------


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.1f}" if seconds < 100 else f"{seconds:.0f}"


def machine() -> dict[str, str]:
    model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    dvc = run(["dvc", "--version"], Path.cwd()).strip()
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("dvc-s3", "moto"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "dvc": dvc,
        "dvc-s3": versions["dvc-s3"],
        "moto": versions["moto"],
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def table(rows: list[Row]) -> str:
    head = ["layout", "remote", "N files", "outputs", *COLUMNS, "load 1-min (min–max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = {name: i for i, name in enumerate(LAYOUTS)}
    for r in sorted(rows, key=lambda r: (-r.n, order[r.layout], r.remote != "local")):
        cells = [r.layout, r.remote, f"{r.n:,}", f"{r.outs:,}"]
        cells += [fmt(r.times.get(c)) for c in COLUMNS]
        cells.append(f"{min(r.loads):.1f}–{max(r.loads):.1f}" if r.loads else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(
    rows: list[Row], info: dict[str, str], args: argparse.Namespace, started: str, uptime: list[str]
) -> str:
    plan = f"--n {args.n}" + (f" --s3-n {args.s3_n}" if args.s3_n != args.n else "")
    plan += " --no-transfer" if args.no_transfer else ""
    return "\n".join(
        [
            "# DVC wall time per data layout",
            "",
            f"Generated by `benchmarks/dvc_layout.py {plan} --jobs {args.jobs} --folders {args.folders} "
            f"--seed {args.seed} --layouts {','.join(args.layouts)} --remotes {','.join(args.remotes)}`, "
            f"started {started}.",
            "",
            "Seconds of wall time per command. N files = N/2 tiny images (~45 B) + N/2 YOLO labels in "
            f"{args.folders} session folders (`images/sNNN/`, `labels/sNNN/`). `outputs` = DVC outputs "
            "(`.dvc` files). `prepare` = packing the tars (tar layout only). `pull` starts with the "
            "workspace copy and the whole cache deleted. `add +1%` / `push +1%`: a new session folder of "
            "N/100 files added and pushed to the row's remote (`shards` pushes only the new `.dvc` files; "
            "the others push everything). A second row of the same layout and N is the same tree pushed to "
            "and pulled from the other remote (its add and status are in the first row). `-j` "
            f"{args.jobs} on push and pull. Load = the 1-minute load average read before each timed "
            "command of the row (other jobs share this machine).",
            "",
            table(rows),
            "",
            "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".",
            "",
            "`uptime` at start and end: " + " / ".join(f"`{u}`" for u in uptime) + ".",
            "",
        ]
    )


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=1_000_000, help="files in the tree (half images, half labels)"
    )
    parser.add_argument(
        "--s3-n",
        type=int,
        default=None,
        help="files in the tree for the S3 rows (default: --n; moto is slow at 1M)",
    )
    parser.add_argument("--folders", type=int, default=100, help="session folders (= shards)")
    parser.add_argument("--jobs", type=int, default=8, help="-j for dvc push and pull")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layouts", type=lambda s: s.split(","), default=list(LAYOUTS))
    parser.add_argument("--remotes", type=lambda s: s.split(","), default=["local", "s3"])
    parser.add_argument(
        "--report", type=Path, default=None, help="also write the table (markdown) here"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="parent of the temporary folder (default: /tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the repos (debugging)")
    parser.add_argument(
        "--no-transfer",
        action="store_true",
        help="skip the full push and pull (add, status and the +1%% increment only; for `shards` "
        "and `tar` the increment's push does not depend on a full push before it)",
    )
    args = parser.parse_args(argv)
    args.s3_n = args.n if args.s3_n is None else args.s3_n
    for layout in args.layouts:
        if layout not in LAYOUTS:
            parser.error(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    for remote in args.remotes:
        if remote not in ("local", "s3"):
            parser.error(f"unknown remote {remote!r} (local, s3)")
    # (N, remotes) per tree: S3 on its own tree when it is measured at another N.
    plan: list[tuple[int, list[str]]] = []
    if "s3" in args.remotes and args.s3_n != args.n:
        # the smaller tree goes to both remotes: local at two N shows the scaling
        if "local" in args.remotes:
            plan.append((args.n, ["local"]))
        plan.append((args.s3_n, list(args.remotes)))
    else:
        plan.append((args.n, list(args.remotes)))

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    ups = [uptime()]
    info = machine()
    print(f"{started}: {ups[0]}", flush=True)
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        work = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="vigil-dvc-layout-", dir=args.workdir)
            )
        )
        s3_url = stack.enter_context(moto_server()) if "s3" in args.remotes else None

        def save() -> None:  # the rows so far, in case the run is stopped or a later layout fails
            if args.report is not None:
                args.report.parent.mkdir(parents=True, exist_ok=True)
                partial = [*ups, f"{uptime()} (partial: the run had not ended)"]
                args.report.write_text(report(rows, info, args, started, partial))

        for n, remotes in plan:
            for layout in args.layouts:
                s3 = s3_url if "s3" in remotes else None
                measure_layout(work, layout, n, remotes, args, s3, rows, save)
    ups.append(uptime())
    text = report(rows, info, args, started, ups)
    print(text)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    return rows


if __name__ == "__main__":
    main()
