"""Code safety rules, checked on the source itself: YAML only through safe loading, no shell, no pickle, no eval.

Parsed with `ast`, so a comment or a string that mentions these names does not count, and a call
written differently (an alias, a keyword) still does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "stages").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")])


def call_name(node: ast.Call) -> str:
    func = node.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def violations(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node)
        keywords = {k.arg: k.value for k in node.keywords}
        if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
            found.append(f"{name} (use yaml.safe_load)")
        if name.endswith(("os.system", "os.popen")) or name in ("system", "popen"):
            found.append(f"{name} (runs a shell)")
        shell = keywords.get("shell")
        if isinstance(shell, ast.Constant) and shell.value is True:
            found.append(f"{name}(shell=True)")
        if name in ("pickle.load", "pickle.loads"):
            found.append(name)
        if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):  # not torch's `model.eval()`
            found.append(node.func.id)
    return found


@pytest.mark.parametrize("snippet", [
    "import yaml\nyaml.load(open('p'))",
    "import subprocess\nsubprocess.run('ls', shell=True)",
    "import os\nos.system('ls')",
    "import pickle\npickle.loads(b'')",
    "eval('1')",
])
def test_the_rule_catches_each_pattern(snippet: str) -> None:
    assert violations(snippet)


def test_safe_forms_pass() -> None:
    assert not violations("import yaml, subprocess\nyaml.safe_load('a: 1')\nsubprocess.run(['ls'], check=True)\n"
                          "# yaml.load( in a comment\ns = 'shell=True'\nmodel.fuse().eval()")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_project_code_follows_the_rules(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("section,key,value", [
    ("hash", "cache", "/etc/cache.json"),
    ("hash", "cache", "../outside/cache.json"),
    ("pretrained", "cache", "~/wheels"),
    ("train", "weights", "models/../../secret.pt"),
])
def test_params_paths_may_not_leave_the_repo(tmp_path: Path, section: str, key: str, value: str) -> None:
    from vigil.errors import VigilError
    from vigil.models.params import PretrainedParams, TrainParams
    from vigil.params import HashParams, load_section

    cls = {"hash": HashParams, "pretrained": PretrainedParams, "train": TrainParams}[section]
    params = tmp_path / "params.yaml"
    params.write_text(f"{section}:\n  {key}: {value!r}\n")
    with pytest.raises(VigilError) as err:
        load_section(params, section, cls)
    assert err.value.field == f"{section}.{key}" and "leaves the repository" in err.value.message
    params.write_text(f"{section}:\n  {key}: 'models/ok/file.pt'\n")
    load_section(params, section, cls)
