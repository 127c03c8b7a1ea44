"""Code safety rules, checked on the source itself: YAML only through safe loading, no shell, no pickle, no eval.

Parsed with `ast`, so a comment or a string that mentions these names does not count, and a call
written differently (an alias, a keyword) still does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    [
        *(REPO / "src").rglob("*.py"),
        *(REPO / "stages").rglob("*.py"),
        *(REPO / "benchmarks").rglob("*.py"),
    ]
)


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
        if isinstance(node.func, ast.Name) and node.func.id in (
            "eval",
            "exec",
        ):  # not torch's `model.eval()`
            found.append(node.func.id)
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "import yaml\nyaml.load(open('p'))",
        "import subprocess\nsubprocess.run('ls', shell=True)",
        "import os\nos.system('ls')",
        "import pickle\npickle.loads(b'')",
        "eval('1')",
    ],
)
def test_the_rule_catches_each_pattern(snippet: str) -> None:
    assert violations(snippet)


def test_safe_forms_pass() -> None:
    assert not violations(
        "import yaml, subprocess\nyaml.safe_load('a: 1')\nsubprocess.run(['ls'], check=True)\n"
        "# yaml.load( in a comment\ns = 'shell=True'\nmodel.fuse().eval()"
    )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_project_code_follows_the_rules(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "value", ["/etc/cache.json", "../outside/cache.json", "~/wheels", "models/../../secret.pt"]
)
def test_params_paths_may_not_leave_the_repo(value: str) -> None:
    """A params field marked REPO_PATH is refused when it leaves the repository (the paths themselves now
    live in dvc.yaml; the rule stays for any path a params section holds)."""
    from dataclasses import dataclass, field

    from vigil.errors import VigilError
    from vigil.params import REPO_PATH, build

    @dataclass(frozen=True)
    class Paths:
        cache: str = field(metadata=REPO_PATH)

    with pytest.raises(VigilError) as err:
        build(Paths, {"cache": value}, "hash")
    assert err.value.field == "hash.cache" and "leaves the repository" in err.value.message
    build(Paths, {"cache": "models/ok/file.pt"}, "hash")


def test_every_torch_load_goes_through_the_trust_module() -> None:
    """One place decides what is unpickled (`vigil.models.trust`); a `torch.load` elsewhere would bypass it."""
    trust = REPO / "src/vigil/models/trust.py"
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in SOURCES
        if path != trust
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and call_name(node).endswith(("torch.load", "torch_load", "torch_safe_load"))
    ]
    assert found == []
