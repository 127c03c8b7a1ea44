"""Great Expectations 1.x suites (JSON files in `suites/`) run over the manifest, the labels and coverage.

The suites are data: each expectation's `meta` names the rule, its severity, the field and a hint,
so a failed expectation becomes findings that point at a file and line. Value sets that depend on
the project (allowed strata, class ids, coverage minimums) are GE suite parameters filled from
params.yaml at run time.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

SUITES: tuple[str, ...] = ("manifest", "labels", "coverage")
FIXED_RUN_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # data docs stay byte-stable between runs


@dataclass(frozen=True)
class Failure:
    """One failed expectation: its suite, its meta and the dataframe rows that broke it."""

    suite: str
    rule: str
    severity: str
    field: str
    hint: str
    expectation: str
    rows: list[Any]  # dataframe index labels of the unexpected rows ([] = whole-table failure)
    values: list[Any]
    exception: str | None = None


def load_suite(name: str) -> dict[str, Any]:
    text = (
        resources.files("vigil.data").joinpath("suites", f"{name}.json").read_text(encoding="utf-8")
    )
    return json.loads(text)


def run_suites(
    frames: dict[str, pd.DataFrame], parameters: dict[str, Any], docs_dir: Path | None = None
) -> list[Failure]:
    """Validate each named dataframe with its suite; optionally build GE data docs into `docs_dir`."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    actions: list[Any] = []
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="vigil",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["vigil"]))
    source = context.data_sources.add_pandas("vigil")
    definitions = []
    for name, frame in frames.items():
        if frame.empty:
            continue
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(gx.ExpectationSuite(**load_suite(name)))
        definitions.append(
            (
                name,
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=name, data=batch, suite=suite)
                ),
            )
        )
    failures: list[Failure] = []
    for name, definition in definitions:
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"check_{name}",
                validation_definitions=[definition],
                actions=actions,
                result_format={"result_format": "COMPLETE"},
            )
        )
        result = checkpoint.run(
            batch_parameters={"dataframe": frames[name]},
            expectation_parameters=parameters,
            run_id=RunIdentifier(run_name="vigil", run_time=FIXED_RUN_TIME),
        )
        for run_result in result.run_results.values():
            for item in run_result.results:
                if item.success:
                    continue
                config: Any = item.expectation_config  # always set on a result of a suite's expectation
                meta = config.meta or {}
                failures.append(
                    Failure(
                        suite=name,
                        rule=meta.get("rule", config.type),
                        severity=meta.get("severity", "critical"),
                        field=meta.get("field", config.kwargs.get("column", "")),
                        hint=meta.get("hint", ""),
                        expectation=config.type,
                        rows=list(item.result.get("unexpected_index_list") or []),
                        values=list(item.result.get("unexpected_list") or []),
                        exception=exception_text(item.exception_info),
                    )
                )
    if docs_dir is not None:
        _strip_build_stamps(Path(docs_dir))
    return failures


def exception_text(info: dict[str, Any] | None) -> str | None:
    """The message of an expectation that raised, or None.

    GE gives either one `{raised_exception, exception_message, …}` or, when a metric failed, a mapping
    of metric ids to such records; which metric failed first depends on set order, so the messages are
    collected and sorted (the same failure reads the same in every run).
    """
    if not info:
        return None
    records = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    messages = set()
    for record in records:
        if record.get("raised_exception", True):
            text = str(record.get("exception_message") or "the expectation raised").strip()
            messages.add(text.splitlines()[0] if text else "the expectation raised")
    return "; ".join(sorted(messages)) or None


def _strip_build_stamps(docs_dir: Path) -> None:
    """GE stamps its pages with the build time and random element ids; make both stable per page."""
    import re

    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    for page in docs_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        clean = re.sub(r"(logo-long\.png)\?d=[0-9TZ.]+", r"\1", text)
        clean = re.sub(
            r"\b\d{8}T\d{6}\.\d{6}Z\b", FIXED_RUN_TIME.strftime("%Y%m%dT%H%M%S.%fZ"), clean
        )
        stable: dict[str, str] = {}

        def stable_id(match: re.Match[str], ids: dict[str, str] = stable) -> str:
            return ids.setdefault(match.group(0), f"id{len(ids):04d}")

        clean = uuid.sub(stable_id, clean)
        if clean != text:
            page.write_text(clean, encoding="utf-8")
