"""What a Python file imports, read with `ast` (never executed): the repo-contract tests' one import reader.

Every `import` and `from … import` is counted, at any depth (function-level imports included), relative
ones resolved against the file's own package. Only modules of the project's own `src/` tree are kept.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The file of module `name` under src/ (a package's `__init__.py`), or None when it is not ours."""
    base = SRC.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def module_name(path: Path) -> str | None:
    """The dotted name of a file under src/ (None for stage scripts and other files outside it)."""
    try:
        rel = path.resolve().relative_to(SRC)
    except ValueError:
        return None
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(path: Path) -> list[str]:
    name = module_name(path)
    if name is None:
        return []
    parts = name.split(".")
    return parts if path.name == "__init__.py" else parts[:-1]


def imported_names(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything `path` imports; `from a import b` yields `a` and `a.b`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path)
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def own_imports(path: Path) -> set[Path]:
    """The project files `path` imports directly: each module and every package `__init__` on its way."""
    files: set[Path] = set()
    for _, name in imported_names(path):
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            found = module_file(".".join(parts[:k]))
            if found is not None:
                files.add(found)
    return files


def closure(script: Path) -> set[Path]:
    """`script` and every project file it imports, transitively (what can change what the script does)."""
    seen: set[Path] = set()
    todo = [script.resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(own_imports(path) - seen)
    return seen
