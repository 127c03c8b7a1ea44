"""What a dataset check reports: findings that name file, line, field, rule and what to do, and the verdict.

Apart from the checks themselves so that every check module (images, labels, leakage, split lists)
adds to one report without importing the others.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

CRITICAL = "critical"
WARNING = "warning"
MAX_LISTED = 500  # findings listed in the metrics document (the rest are counted)


@dataclass(frozen=True)
class Finding:
    severity: str
    rule: str
    path: str
    message: str
    hint: str
    line: int | None = None
    field: str | None = None

    def render(self) -> str:
        where = self.path + (f":{self.line}" if self.line is not None else "")
        where += f" [{self.field}]" if self.field else ""
        prefix = "warning" if self.severity == WARNING else "error"
        return f"{prefix}: {where}: {self.message} ({self.rule}) — {self.hint}"

    def sort_key(self) -> tuple[Any, ...]:
        """A total order (critical first, file, line, rule, field, text): same data, same list."""
        return (
            self.severity != CRITICAL,
            self.path,
            self.line or 0,
            self.rule,
            self.field or "",
            self.message,
            self.hint,
        )


@dataclass
class Report:
    root: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # coverage rows {kind: class|stratum, key, value, count}: the findings page's bars (not in the metrics)
    coverage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(f.severity == CRITICAL for f in self.findings)

    def add(
        self,
        severity: str,
        rule: str,
        path: str,
        message: str,
        hint: str,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.findings.append(Finding(severity, rule, path, message, hint, line, field))

    def finish(self) -> None:
        """Put the findings in their one deterministic order, whatever order the checks found them in."""
        self.findings = sorted(set(self.findings), key=Finding.sort_key)

    def summary(self) -> dict[str, Any]:
        """The metrics document: verdict, counts per rule and the findings (sorted, deterministic)."""
        rules = Counter(f"{f.severity}:{f.rule}" for f in self.findings)
        ordered = sorted(self.findings, key=Finding.sort_key)
        return {
            "passed": self.passed,
            "critical": sum(f.severity == CRITICAL for f in self.findings),
            "warnings": sum(f.severity == WARNING for f in self.findings),
            "rules": dict(sorted(rules.items())),
            **self.stats,
            "findings": [asdict(f) for f in ordered[:MAX_LISTED]],
            "findings_truncated": max(0, len(ordered) - MAX_LISTED),
        }
