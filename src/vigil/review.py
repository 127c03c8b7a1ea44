"""The pull-request review report: one markdown document a reviewer reads, made by `vigil report --base REV`.

It holds the gate verdict and table, `dvc metrics diff` and `dvc params diff` against the base
(asked of DVC itself, so the numbers are DVC's), the per-stratum changes that matter most (largest
drops first) and the key plots rendered as PNG images beside the document.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from typing import Any

from vigil.atomic import write_text_atomic
from vigil.errors import VigilError
from vigil.export.coreml_bench import DEFAULT_OUT as COREML_BENCH
from vigil.export.coreml_bench import bench_section, read_bench

NOISY = (
    "latency",
    "seconds",
    "wall_seconds",
    "seconds_per_epoch",
)  # measured each run; shown, not ranked


def dvc_executable() -> str:
    """The `dvc` installed beside this Python (the project's .venv, activated or not), else PATH's."""
    import sys

    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.is_file() else "dvc"


def check_repo(repo: Path) -> Path:
    if not Path(repo).is_dir():
        raise VigilError(
            "not a folder", path=repo, field="--repo", hint="give the vigil repository's root"
        )
    return Path(repo)


def resolve_base(repo: Path, base: str, field: str = "--base") -> str:
    """The commit id `base` names in `repo`; refused before git or DVC could read it as an option.

    `--base=--all` would reach `dvc metrics diff` as its `--all` flag: a revision starting with `-`
    is never a revision. DVC then gets the verified commit id, not the user's text.
    """
    if not base.strip() or base.startswith("-") or any(c in base for c in "\0\n\r"):
        raise VigilError(
            f"{base!r} is not a git revision (one starting with '-' would be read as an option)",
            field=field,
            hint="give a branch, tag or commit, e.g. --base origin/main",
        )
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
            cwd=check_repo(repo),
            capture_output=True,
            text=True,
        )
    except OSError as exc:
        raise VigilError(
            f"cannot run git: {exc.strerror or exc}", field=field, hint="install git"
        ) from None
    commit = proc.stdout.strip()
    if proc.returncode != 0 or not commit:
        raise VigilError(
            f"{base!r} is not a commit of the git repository at {repo}",
            field=field,
            hint="fetch it first (git fetch origin) or give e.g. HEAD~1",
        )
    return commit


def run_dvc(
    args: list[str], repo: Path, *, hint: str, path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `dvc ARGS` (argument list, no shell) in `repo`; a VigilError naming it when it fails."""
    try:
        proc = subprocess.run([dvc_executable(), *args], cwd=repo, capture_output=True, text=True)
    except OSError as exc:
        raise VigilError(
            f"cannot run dvc: {exc.strerror or exc}", hint="install the pinned stack: make env"
        ) from None
    if proc.returncode != 0:
        raise VigilError(
            f"`dvc {' '.join(args)}` failed: {proc.stderr.strip()[-300:]}", path=path, hint=hint
        )
    return proc


def dvc_json(args: list[str], repo: Path) -> dict[str, Any]:
    """Run a `dvc … --json` command (argument list, no shell) and parse its answer."""
    proc = run_dvc([*args, "--json"], repo, hint="is --base a git revision of this repository?")
    try:
        answer = json.loads(proc.stdout or "{}")
    except ValueError:
        raise VigilError(
            f"`dvc {' '.join(args)} --json` did not answer JSON: {proc.stdout.strip()[:200]}"
        ) from None
    return answer if isinstance(answer, dict) else {}


def read_json(path: Path) -> Any:
    """A metrics file of the workspace, or None when absent; a broken one is an error naming it."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VigilError(
            f"not readable JSON ({type(exc).__name__})",
            path=path,
            hint="re-run the stage that writes it (dvc repro)",
        ) from None


def check_out(out: Path) -> Path:
    """The report's path, and its plots folder beside it, can be written; checked before any work."""
    from vigil.writable import check_output_file

    check_output_file(out, "--out", suffix=".md")
    plots = plots_dir(out)
    if plots.exists() and not plots.is_dir():
        raise VigilError(
            "the plots folder's name is taken by a file",
            path=plots,
            field="--out",
            hint="move that file, or give another --out",
        )
    return out


def plots_dir(out: Path) -> Path:
    return out.parent / f"{out.stem}_plots"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _delta(old: Any, new: Any) -> float | None:
    if (
        isinstance(old, (int, float))
        and isinstance(new, (int, float))
        and not isinstance(old, bool)
    ):
        return float(new) - float(old)
    return None


def stratum_changes(
    metrics_diff: dict[str, Any], limit: int = 10
) -> list[tuple[str, Any, Any, float]]:
    """Per-stratum mAP changes, largest drop first."""
    rows = []
    for file, entries in metrics_diff.items():
        for key, change in entries.items():
            if "per_stratum" in key and key.endswith(("map50", "map50_95")):
                delta = _delta(change.get("old"), change.get("new"))
                if delta is not None:
                    rows.append(
                        (f"{Path(file).stem}.{key}", change.get("old"), change.get("new"), delta)
                    )
    rows.sort(key=lambda row: row[3])
    return rows[:limit]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _pr_plot(repo: Path, out_dir: Path, plt: Any) -> list[tuple[str, str]]:
    """The mean precision–recall curve of every evaluated model."""
    made: list[tuple[str, str]] = []
    pr = repo / "plots/evaluate/pr_mean.csv"
    if pr.is_file():
        rows = list(csv.DictReader(pr.open()))
        fig, ax = plt.subplots(figsize=(5, 4))
        for model in [k for k in rows[0] if k != "recall"]:
            ax.plot(
                [float(r["recall"]) for r in rows], [float(r[model]) for r in rows], label=model
            )
        ax.set(
            xlabel="recall",
            ylabel="precision",
            title="precision–recall (IoU .50, mean over classes)",
        )
        ax.legend()
        fig.savefig(out_dir / "pr.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        made.append(("Precision–recall", "pr.png"))
    return made


def _reliability_plot(repo: Path, out_dir: Path, plt: Any) -> list[tuple[str, str]]:
    """Calibration before/after on the test split."""
    made: list[tuple[str, str]] = []
    reliability = repo / "plots/calibrate/reliability.csv"
    if reliability.is_file():
        rows = list(csv.DictReader(reliability.open()))
        x = [float(r["confidence"]) for r in rows]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([0, 1], [0, 1], "k--", label="ideal")
        ax.plot(x, [float(r["precision_before"]) for r in rows], "o-", label="before")
        ax.plot(x, [float(r["precision_after"]) for r in rows], "o-", label="after")
        ax.set(xlabel="confidence", ylabel="precision", title="reliability (test split)")
        ax.legend()
        fig.savefig(out_dir / "reliability.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        made.append(("Reliability diagram", "reliability.png"))
    return made


def _confusion_plots(repo: Path, out_dir: Path, plt: Any) -> list[tuple[str, str]]:
    """One confusion matrix per evaluated model."""
    made: list[tuple[str, str]] = []
    for confusion in sorted((repo / "plots/evaluate").glob("*/confusion.json")):
        pairs = json.loads(confusion.read_text())
        labels = sorted(
            {p["actual"] for p in pairs} | {p["predicted"] for p in pairs},
            key=lambda name: (name == "background", name),
        )
        index = {name: i for i, name in enumerate(labels)}
        grid = [[0] * len(labels) for _ in labels]
        for pair in pairs:
            grid[index[pair["actual"]]][index[pair["predicted"]]] += 1
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.imshow(grid, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for i, row in enumerate(grid):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
        model = confusion.parent.name
        ax.set(xlabel="predicted", ylabel="actual", title=f"{model} confusion")
        name = f"confusion_{model}.png"
        fig.savefig(out_dir / name, dpi=100, bbox_inches="tight")
        plt.close(fig)
        made.append((f"Confusion matrix ({model})", name))
    return made


def render_plots(repo: Path, out_dir: Path) -> list[tuple[str, str]]:
    """PR curve, reliability diagram and confusion matrix as PNGs; returns (title, file name) pairs.

    A plot whose source file is damaged is left out (the report says so) rather than losing the report.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[tuple[str, str]] = []
    for title, draw in (
        ("Precision–recall", _pr_plot),
        ("Reliability diagram", _reliability_plot),
        ("Confusion matrices", _confusion_plots),
    ):
        try:
            made += draw(repo, out_dir, plt)
        except (OSError, ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
            plt.close("all")
            made.append(
                (f"{title}: not drawn, its source file is damaged ({type(exc).__name__})", "")
            )
    return made


GALLERY_ERRORS = "plots/evaluate/errors.json"  # evaluate's per-image counts and gallery index


def git_file(repo: Path, commit: str, path: str) -> bytes | None:
    """`path` as committed in `commit` (plots are git-tracked: cache: false), or None when absent."""
    proc = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def _errors_doc(data: Any) -> dict[str, Any]:
    ok = isinstance(data, dict) and isinstance(data.get("models"), dict)
    return data if ok and isinstance(data.get("gallery"), dict) else {}


def gallery_rows(now: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """Each drawn gallery image with its errors now and at the base, those that got worse first.

    `change` is (missed + false) now minus at the base (None when the base did not score that image).
    Order: largest increase first, then most errors now, then model and file (stable).
    """
    rows = []
    for model, entries in sorted(now.get("gallery", {}).items()):
        counts = base.get("models", {}).get(model, {}) if base else {}
        seen: set[str] = set()
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("image") in seen:
                continue
            seen.add(entry["image"])
            errors = int(entry.get("missed", 0)) + int(entry.get("fp", 0))
            old = counts.get(entry["image"]) if isinstance(counts, dict) else None
            before = (
                int(old.get("missed", 0)) + int(old.get("fp", 0)) if isinstance(old, dict) else None
            )
            rows.append(
                {
                    **entry,
                    "model": model,
                    "errors": errors,
                    "base": old if isinstance(old, dict) else None,
                    "change": None if before is None else errors - before,
                }
            )
    rows.sort(
        key=lambda r: (
            -(r["change"] if r["change"] is not None else 0),
            -r["errors"],
            r["model"],
            r["file"],
        )
    )
    return rows


def gallery_section(repo: Path, commit: str, out_dir: Path, prefix: str) -> list[str]:
    """The error gallery against the base: images drawn now (and at the base, when it drew them)."""
    now = _errors_doc(read_json(repo / GALLERY_ERRORS))
    if not now:
        return [
            "## Error gallery",
            "",
            f"No `{GALLERY_ERRORS}` in the workspace (run evaluate).",
            "",
        ]
    raw = git_file(repo, commit, GALLERY_ERRORS)
    try:
        base = _errors_doc(json.loads(raw)) if raw else {}
    except ValueError:
        base = {}
    rows = gallery_rows(now, base)
    lines = [
        "## Error gallery (worse than the base first)",
        "",
        f"Test images with the most missed and the most false boxes at conf {now.get('conf')} "
        f"(IoU {now.get('iou')}); true positives, false positives and misses in the colours "
        "each image's legend names."
        + ("" if base else " The base has no per-image errors to compare with."),
        "",
    ]
    base_files = {
        (model, e.get("image")): e.get("file")
        for model, entries in base.get("gallery", {}).items()
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict)
    }
    folder = repo / Path(GALLERY_ERRORS).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows, 1):
        source = folder / str(row["file"])
        if not source.is_file() or not _safe_rel(str(row["file"])):
            continue
        name = f"gallery_{i:02d}_{row['model']}{source.suffix}"
        (out_dir / name).write_bytes(source.read_bytes())
        old = row["base"]
        change = "new image" if row["change"] is None else f"{row['change']:+d} errors"
        lines.append(
            f"### {i}. `{row['model']}` · `{row['image']}` · {change}\n\n"
            f"now: {row['missed']} missed, {row['fp']} false, {row['tp']} found"
            + (f"; base: {old.get('missed')} missed, {old.get('fp')} false" if old else "")
            + "\n"
        )
        images = [f"![now]({prefix}/{name})"]
        before = base_files.get((row["model"], row["image"]))
        data = (
            git_file(repo, commit, f"{Path(GALLERY_ERRORS).parent.as_posix()}/{before}")
            if before
            else None
        )
        if data:
            base_name = f"gallery_{i:02d}_{row['model']}_base{Path(str(before)).suffix}"
            (out_dir / base_name).write_bytes(data)
            images.append(f"![base]({prefix}/{base_name})")
        lines += [" ".join(images), ""]
    return lines


def _safe_rel(rel: str) -> bool:
    return not Path(rel).is_absolute() and ".." not in Path(rel).parts


MODEL_KEYS = (
    ("map50_95", "mAP50-95"),
    ("map50", "mAP50"),
    ("recall", "recall"),
    ("latency_ms.median", "latency ms"),
)


def _dig(block: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        block = block.get(part) if isinstance(block, dict) else None
    return block


def model_rows(evaluate: dict[str, Any], metrics_diff: dict[str, Any]) -> list[list[str]]:
    """One row per evaluated model (teacher, student, control, …): headline metrics now, with the base where changed."""
    changes: dict[str, Any] = next(
        (entries for file, entries in metrics_diff.items() if Path(file).name == "evaluate.json"),
        {},
    )
    rows = []
    for model, block in evaluate.items():
        if not isinstance(block, dict) or "map50_95" not in block:
            continue
        cells = [f"`{model}`"]
        for key, _ in MODEL_KEYS:
            now = _dig(block, key)
            change = changes.get(f"{model}.{key}")
            cells.append(
                _fmt(now) if change is None else f"{_fmt(now)} (base {_fmt(change.get('old'))})"
            )
        rows.append(cells)
    return rows


def distillation_lines(evaluate: dict[str, Any]) -> list[str]:
    """The student against its teacher and its no-distillation control, when all three were evaluated."""
    score = {m: _dig(evaluate, f"{m}.map50_95") for m in ("teacher", "student", "control")}
    if not all(isinstance(v, (int, float)) for v in score.values()):
        return []
    lines = [
        f"- student / teacher mAP50-95: **{score['student'] / score['teacher']:.3f}**"
        if score["teacher"]
        else "- student / teacher mAP50-95: — (teacher scores 0)"
    ]
    lines.append(
        f"- KD gain (student − control) mAP50-95: **{score['student'] - score['control']:+.4f}**"
    )
    return lines


def coreml_bench_lines(repo: Path, given: Path | None) -> list[str]:
    """The Mac benchmark's section: `given` (checked before any work), else the repo's file when present."""
    if given is not None:
        return bench_section(read_bench(given), Path(given).as_posix())
    found = repo / COREML_BENCH
    if not found.is_file():
        return []
    try:
        return bench_section(read_bench(found), COREML_BENCH.as_posix())
    except VigilError as exc:  # a damaged workspace file does not lose the report
        return ["## CoreML on a Mac (`vigil bench coreml`)", "", f"Not shown: {exc.render()}", ""]


def build_report(repo: Path, base: str, out: Path, *, coreml_bench: Path | None = None) -> str:
    """Write the review document to `out` (images beside it) and return its text.

    `coreml_bench`: a `vigil bench coreml` JSON to show (default: the repository's one, if any).
    """
    repo, out = check_repo(Path(repo)), check_out(Path(out))
    bench = coreml_bench_lines(repo, coreml_bench)
    commit = resolve_base(repo, base)
    metrics_diff = dvc_json(["metrics", "diff", commit], repo)
    params_diff = dvc_json(["params", "diff", commit], repo)
    parts = [f"# vigil review against `{base}`", ""]
    gate = read_json(repo / "metrics/gate.json")
    if isinstance(gate, dict):
        gates = (
            [g for g in gate.get("gates", []) if isinstance(g, dict)]
            if isinstance(gate.get("gates"), list)
            else []
        )
        verdict = "PASSED" if gate.get("passed") else "FAILED"
        failed = [g for g in gates if not g.get("passed")]
        parts += [f"## Gate: **{verdict}** ({len(gates) - len(failed)}/{len(gates)})", ""]
        ordered = sorted(gates, key=lambda g: bool(g.get("passed")))
        parts += [
            _table(
                ["result", "gate", "value", "op", "threshold"],
                [
                    [
                        "pass" if g.get("passed") else "**FAIL**",
                        str(g.get("name")),
                        _fmt(g.get("value")),
                        f"`{g.get('op')}`",
                        _fmt(g.get("threshold")),
                    ]
                    for g in ordered
                ],
            ),
            "",
        ]
    else:
        parts += ["## Gate: no metrics/gate.json in the workspace", ""]
    evaluate = read_json(repo / "metrics/evaluate.json")
    evaluate = evaluate if isinstance(evaluate, dict) else {}
    models = model_rows(evaluate, metrics_diff)
    if models:
        parts += [
            "## Models (test split)",
            "",
            _table(["model", *(title for _, title in MODEL_KEYS)], models),
            "",
            *distillation_lines(evaluate),
            "",
        ]
    parts += bench
    drops = stratum_changes(metrics_diff)
    parts += ["## Per-stratum changes (largest drops first)", ""]
    parts += [
        _table(
            ["metric", "base", "now", "change"],
            [[f"`{k}`", _fmt(o), _fmt(n), f"{d:+.4f}"] for k, o, n, d in drops],
        )
        if drops
        else "No per-stratum metric changed.",
        "",
    ]
    rows = []
    for file, entries in sorted(metrics_diff.items()):
        for key, change in sorted(entries.items()):
            delta = _delta(change.get("old"), change.get("new"))
            if key.startswith(("per_class", "per_size", "per_group", "findings")) or ".per_" in key:
                continue  # the per-* blocks are long; strata are above, the rest is in `dvc metrics diff`
            rows.append(
                [
                    f"`{Path(file).stem}.{key}`",
                    _fmt(change.get("old")),
                    _fmt(change.get("new")),
                    ""
                    if delta is None
                    else f"{delta:+.4g}" + (" (noisy)" if any(n in key for n in NOISY) else ""),
                ]
            )
    parts += [
        "## `dvc metrics diff`",
        "",
        _table(["metric", "base", "now", "change"], rows) if rows else "No metric changed.",
        "",
    ]
    prows = [
        [f"`{key}`", _fmt(change.get("old")), _fmt(change.get("new"))]
        for file, entries in sorted(params_diff.items())
        for key, change in sorted(entries.items())
    ]
    parts += [
        "## `dvc params diff`",
        "",
        _table(["param", "base", "now"], prows) if prows else "No param changed.",
        "",
    ]
    parts += gallery_section(repo, commit, plots_dir(out), f"{out.stem}_plots")
    images = render_plots(repo, plots_dir(out))
    if images:
        parts += ["## Plots", ""]
        parts += [
            f"### {title}\n\n![{title}]({out.stem}_plots/{name})\n" if name else f"### {title}\n"
            for title, name in images
        ]
    text = "\n".join(parts).rstrip() + "\n"
    write_text_atomic(out, text)
    return text
