"""The split lists (`train.txt`, `val.txt`, `test.txt`, `pool.txt`), read by one rule everywhere.

The split stage writes one image path per line, relative to the dataset root (`images/…`); the
ultralytics spelling `./images/…` is read too. Blank lines and `#` comments are skipped. A line
that is not under `images/`, climbs out with `..`, or repeats an earlier image is refused with its
line number: a repeated image would be trained or scored twice, and a path outside the dataset
is never read.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from vigil.errors import VigilError

HINT = "split lists hold image paths relative to the dataset root, e.g. images/lab/000001.jpg"


def read_split_list(path: Path) -> list[str]:
    """Image paths of one split list, in file order."""
    path = Path(path)
    if not path.is_file():
        raise VigilError("split list not found", path=path, hint="run the `split` stage first")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VigilError(
            f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path=path, hint=HINT
        ) from None
    except OSError as exc:
        raise VigilError(f"cannot read the split list: {exc.strerror}", path=path) from None
    items: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("./"):
            line = line[2:]
        if not line.startswith("images/") or ".." in PurePosixPath(line).parts:
            raise VigilError(f"{line!r} is not under images/", path=path, line=number, hint=HINT)
        if line in seen:
            raise VigilError(
                f"{line!r} is listed twice (first on line {seen[line]})",
                path=path,
                line=number,
                hint="list each image once",
            )
        seen[line] = number
        items.append(line)
    return items
