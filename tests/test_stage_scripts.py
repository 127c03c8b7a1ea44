"""One shape for every stage script: typed options, `user_errors` for bad input (exit 2, one line), no ceremony.

The shape is read from the scripts with `ast`; `validate` is also run, because its own exit code 1
(rejected data) must stay apart from 2 (a user error such as a bad params file).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_dataset
from repo_params import write_params

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "stages").glob("*.py"))


def shape_problems(source: str) -> list[str]:
    """What keeps a stage script from the shared shape (empty when it has it)."""
    tree = ast.parse(source)
    problems = []
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    if len(mains) != 1 or not any(
        isinstance(d, ast.Name) and d.id == "user_errors" for d in mains[0].decorator_list
    ):
        problems.append("main is not decorated with vigil.cli_errors.user_errors")
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and "VigilError" in ast.unparse(
            node.type or ast.Name("")
        ):
            problems.append(
                f"line {node.lineno}: its own VigilError handler (user_errors does that)"
            )
        if isinstance(node, ast.Import) and any(alias.name == "vigil" for alias in node.names):
            problems.append(
                f"line {node.lineno}: `import vigil` (any vigil import applies the offline switches)"
            )
        if isinstance(node, ast.Name) and node.id == "configure_ultralytics":
            problems.append(
                f"line {node.lineno}: configure_ultralytics (importing vigil.models does it)"
            )
    if "typer.run(main)" not in source:
        problems.append("no `typer.run(main)` under __main__")
    return problems


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_stage_scripts_share_one_shape(script: Path) -> None:
    assert not shape_problems(script.read_text(encoding="utf-8")), shape_problems(
        script.read_text(encoding="utf-8")
    )


def test_the_shape_check_can_fail() -> None:
    old = (
        "import typer\nimport vigil  # noqa\nfrom vigil.errors import VigilError\n"
        "def main() -> None:\n    configure_ultralytics()\n    try:\n        pass\n"
        "    except VigilError as exc:\n        raise typer.Exit(2)\n"
    )
    assert len(shape_problems(old)) == 5


def run_validate(data: Path, tmp_path: Path, params: Path) -> subprocess.CompletedProcess:
    files = tmp_path / "files.jsonl"
    files.write_text("")
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "validate.py"),
            "--data",
            str(data),
            "--files",
            str(files),
            "--metrics",
            str(tmp_path / "metrics" / "validate.json"),
            "--docs",
            str(tmp_path / "reports"),
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )


def test_validate_exits_2_on_a_user_error_and_1_on_rejected_data(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "ds", n=6)
    bad = run_validate(data, tmp_path, write_params(tmp_path, {"validate.bogus_key": 1}))
    assert bad.returncode == 2, bad.stderr
    assert (
        bad.stderr.startswith("error: ")
        and "validate.bogus_key" in bad.stderr
        and "Traceback" not in bad.stderr
    )
    assert not (tmp_path / "metrics").exists()
    (data / "labels" / "000.txt").write_text(
        "7 0.5 0.5 0.2 0.2\n"
    )  # a class id classes.txt does not have
    rejected = run_validate(data, tmp_path, REPO / "params.yaml")
    assert rejected.returncode == 1, rejected.stderr
    assert "REJECTED" in rejected.stdout and (tmp_path / "metrics" / "validate.json").is_file()
