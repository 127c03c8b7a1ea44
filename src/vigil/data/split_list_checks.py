"""Split lists inside a dataset (`train.txt`, `val.txt`, … at its root) are checked like the manifest.

A list that names an image which does not exist, or a path outside the dataset, would break (or leak
into) whatever trains from it; each such line is a critical finding naming the list and the line. A
repeated entry and an image without a manifest line are warnings.
"""

from __future__ import annotations

from pathlib import Path

from vigil.data.findings import CRITICAL, WARNING, Report
from vigil.data.layout import SPLIT_LISTS, decode_lines, is_inside, split_list_entry


def check_split_lists(root: Path, listed: set[str], report: Report) -> None:
    """Split lists shipped with the dataset (`train.txt`, …) must name images that exist, each once."""
    hint = "list image paths relative to the dataset folder (images/…), one per line"
    for name in SPLIT_LISTS:
        path = root / name
        if not path.is_file():
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            report.add(
                CRITICAL,
                "split_list_unreadable",
                name,
                f"cannot read ({exc.strerror or exc})",
                "check the file and its permissions",
            )
            continue
        seen: dict[str, int] = {}
        for number, text, problem in decode_lines(raw):
            entry = split_list_entry(text) if text is not None else None
            if problem is not None:
                report.add(
                    CRITICAL,
                    "split_list_syntax",
                    name,
                    problem,
                    "save the list as UTF-8 text",
                    line=number,
                )
            elif entry is None or entry.startswith("#"):
                continue
            elif not is_inside(root, entry):
                report.add(
                    CRITICAL,
                    "path_escape",
                    name,
                    f"{entry!r} is absolute or leaves the dataset",
                    hint,
                    line=number,
                )
            elif not (root / entry).is_file():
                report.add(
                    CRITICAL,
                    "split_list_missing_image",
                    name,
                    f"image {entry!r} does not exist",
                    "add the image or remove the line (or delete the stale list)",
                    line=number,
                )
            elif entry in seen:
                report.add(
                    WARNING,
                    "split_list_repeat",
                    name,
                    f"{entry!r} is listed again (first on line {seen[entry]})",
                    "list each image once",
                    line=number,
                )
            elif entry not in listed:
                report.add(
                    WARNING,
                    "split_list_unlisted",
                    name,
                    f"image {entry!r} has no manifest line",
                    "add its manifest line, or remove it from the list",
                    line=number,
                )
            if entry is not None:
                seen.setdefault(entry, number)
