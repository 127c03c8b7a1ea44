"""Rewrite the `src/vigil/*.py` deps of every stage in dvc.yaml to its import closure.

`python tests/contract/sync_deps.py` after adding an import; test_deps_closure.py fails until then.
Other deps (data, artifacts, models, the GE suites folder) and comments are kept as they are.
"""

import re
import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from contract.module_imports import REPO, closure
from contract.pipeline import resolved_stages

stages = resolved_stages()
text = (REPO / "dvc.yaml").read_text().split("\n")
out = []
stage = None
in_deps = False
for line in text:
    m = re.match(r"^  (\w+):$", line)
    if m and m.group(1) in stages:
        stage = m.group(1)
    if re.match(r"^    deps:$", line):
        in_deps = True
        out.append(line)
        continue
    if in_deps and not re.match(r"^      - ", line):
        in_deps = False
    if in_deps:
        entry = line.strip()[2:].split("#")[0].strip()
        if entry.startswith("src/vigil/") and entry.endswith(".py"):
            continue
        out.append(line)
        if entry.startswith("stages/"):
            cmd = stages[stage]["cmd"]
            script = REPO / re.search(r"python\s+(\S+\.py)", cmd).group(1)
            files = sorted(
                str(f.relative_to(REPO))
                for f in closure(script)
                if "src" in f.relative_to(REPO).parts
            )
            out.extend(f"      - {f}" for f in files)
        continue
    out.append(line)
(REPO / "dvc.yaml").write_text("\n".join(out))
