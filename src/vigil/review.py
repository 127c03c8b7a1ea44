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

from vigil.errors import VigilError

NOISY = ("latency", "seconds", "wall_seconds", "seconds_per_epoch")  # measured each run; shown, not ranked


def dvc_json(args: list[str], repo: Path) -> dict[str, Any]:
    """Run a `dvc … --json` command (argument list, no shell) and parse its answer."""
    proc = subprocess.run(["dvc", *args, "--json"], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VigilError(f"`dvc {' '.join(args)}` failed: {proc.stderr.strip()[-300:]}",
                         hint="is --base a git revision of this repository?")
    return json.loads(proc.stdout or "{}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _delta(old: Any, new: Any) -> float | None:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        return float(new) - float(old)
    return None


def stratum_changes(metrics_diff: dict[str, Any], limit: int = 10) -> list[tuple[str, Any, Any, float]]:
    """Per-stratum mAP changes, largest drop first."""
    rows = []
    for file, entries in metrics_diff.items():
        for key, change in entries.items():
            if "per_stratum" in key and key.endswith(("map50", "map50_95")):
                delta = _delta(change.get("old"), change.get("new"))
                if delta is not None:
                    rows.append((f"{Path(file).stem}.{key}", change.get("old"), change.get("new"), delta))
    rows.sort(key=lambda row: row[3])
    return rows[:limit]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def render_plots(repo: Path, out_dir: Path) -> list[tuple[str, str]]:
    """PR curve, reliability diagram and confusion matrix as PNGs; returns (title, file name) pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[tuple[str, str]] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    pr = repo / "plots/evaluate/pr_mean.csv"
    if pr.is_file():
        rows = list(csv.DictReader(pr.open()))
        fig, ax = plt.subplots(figsize=(5, 4))
        for model in [k for k in rows[0] if k != "recall"]:
            ax.plot([float(r["recall"]) for r in rows], [float(r[model]) for r in rows], label=model)
        ax.set(xlabel="recall", ylabel="precision", title="precision–recall (IoU .50, mean over classes)")
        ax.legend()
        fig.savefig(out_dir / "pr.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        made.append(("Precision–recall", "pr.png"))
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
    for confusion in sorted((repo / "plots/evaluate").glob("*/confusion.json")):
        pairs = json.loads(confusion.read_text())
        labels = sorted({p["actual"] for p in pairs} | {p["predicted"] for p in pairs},
                        key=lambda name: (name == "background", name))
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


MODEL_KEYS = (("map50_95", "mAP50-95"), ("map50", "mAP50"), ("recall", "recall"), ("latency_ms.median", "latency ms"))


def _dig(block: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        block = block.get(part) if isinstance(block, dict) else None
    return block


def model_rows(evaluate: dict[str, Any], metrics_diff: dict[str, Any]) -> list[list[str]]:
    """One row per evaluated model (teacher, student, control, …): headline metrics now, with the base where changed."""
    changes = next((entries for file, entries in metrics_diff.items() if Path(file).name == "evaluate.json"), {})
    rows = []
    for model, block in evaluate.items():
        if not isinstance(block, dict) or "map50_95" not in block:
            continue
        cells = [f"`{model}`"]
        for key, _ in MODEL_KEYS:
            now = _dig(block, key)
            change = changes.get(f"{model}.{key}")
            cells.append(_fmt(now) if change is None else f"{_fmt(now)} (base {_fmt(change.get('old'))})")
        rows.append(cells)
    return rows


def distillation_lines(evaluate: dict[str, Any]) -> list[str]:
    """The student against its teacher and its no-distillation control, when all three were evaluated."""
    score = {m: _dig(evaluate, f"{m}.map50_95") for m in ("teacher", "student", "control")}
    if not all(isinstance(v, (int, float)) for v in score.values()):
        return []
    lines = [f"- student / teacher mAP50-95: **{score['student'] / score['teacher']:.3f}**"
             if score["teacher"] else "- student / teacher mAP50-95: — (teacher scores 0)"]
    lines.append(f"- KD gain (student − control) mAP50-95: **{score['student'] - score['control']:+.4f}**")
    return lines


def build_report(repo: Path, base: str, out: Path) -> str:
    """Write the review document to `out` (images beside it) and return its text."""
    repo = Path(repo)
    metrics_diff = dvc_json(["metrics", "diff", base], repo)
    params_diff = dvc_json(["params", "diff", base], repo)
    parts = [f"# vigil review against `{base}`", ""]
    gate_path = repo / "metrics/gate.json"
    if gate_path.is_file():
        gate = json.loads(gate_path.read_text())
        verdict = "PASSED" if gate.get("passed") else "FAILED"
        failed = [g for g in gate.get("gates", []) if not g.get("passed")]
        parts += [f"## Gate: **{verdict}** ({len(gate.get('gates', [])) - len(failed)}/{len(gate.get('gates', []))})", ""]
        ordered = sorted(gate.get("gates", []), key=lambda g: bool(g.get("passed")))
        parts += [_table(["result", "gate", "value", "op", "threshold"],
                         [["pass" if g.get("passed") else "**FAIL**", str(g.get("name")), _fmt(g.get("value")),
                           f"`{g.get('op')}`", _fmt(g.get("threshold"))] for g in ordered]), ""]
    else:
        parts += ["## Gate: no metrics/gate.json in the workspace", ""]
    evaluate_path = repo / "metrics/evaluate.json"
    evaluate = json.loads(evaluate_path.read_text()) if evaluate_path.is_file() else {}
    models = model_rows(evaluate, metrics_diff)
    if models:
        parts += ["## Models (test split)", "",
                  _table(["model", *(title for _, title in MODEL_KEYS)], models), "",
                  *distillation_lines(evaluate), ""]
    drops = stratum_changes(metrics_diff)
    parts += ["## Per-stratum changes (largest drops first)", ""]
    parts += [_table(["metric", "base", "now", "change"],
                     [[f"`{k}`", _fmt(o), _fmt(n), f"{d:+.4f}"] for k, o, n, d in drops]) if drops
              else "No per-stratum metric changed.", ""]
    rows = []
    for file, entries in sorted(metrics_diff.items()):
        for key, change in sorted(entries.items()):
            delta = _delta(change.get("old"), change.get("new"))
            if key.startswith(("per_class", "per_size", "per_group", "findings")) or ".per_" in key:
                continue  # the per-* blocks are long; strata are above, the rest is in `dvc metrics diff`
            rows.append([f"`{Path(file).stem}.{key}`", _fmt(change.get("old")), _fmt(change.get("new")),
                         "" if delta is None else f"{delta:+.4g}" + (" (noisy)" if any(n in key for n in NOISY) else "")])
    parts += ["## `dvc metrics diff`", "", _table(["metric", "base", "now", "change"], rows) if rows
              else "No metric changed.", ""]
    prows = [[f"`{key}`", _fmt(change.get("old")), _fmt(change.get("new"))]
             for file, entries in sorted(params_diff.items()) for key, change in sorted(entries.items())]
    parts += ["## `dvc params diff`", "", _table(["param", "base", "now"], prows) if prows
              else "No param changed.", ""]
    images = render_plots(repo, out.parent / f"{out.stem}_plots")
    if images:
        parts += ["## Plots", ""]
        parts += [f"### {title}\n\n![{title}]({out.stem}_plots/{name})\n" for title, name in images]
    text = "\n".join(parts).rstrip() + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text
