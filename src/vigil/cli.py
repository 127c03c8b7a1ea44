"""The `vigil` command line. Each command is a thin shell over a library function."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from vigil.errors import VigilError

app = typer.Typer(help="vigil: reproducible edge object detectors, from labelled images to a gated release.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Build, check, hash, diff, split and import datasets in the canonical layout.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn a VigilError into one line on stderr and exit code 2 (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VigilError as exc:
            typer.echo(f"error: {exc.render()}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@data_app.command("build-sample")
@user_errors
def build_sample_cmd(
    out: Annotated[Path, typer.Option(help="Folder to write the sample into (replaced whole).")] = Path("data"),
    cache: Annotated[Path, typer.Option(help="Where the Debian source packages are kept.")] = Path.home() / ".cache/vigil/sources",
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    labelled: Annotated[int, typer.Option(help="Labelled images.")] = 600,
    pool: Annotated[int, typer.Option(help="Unlabelled pool images (true boxes kept apart).")] = 300,
) -> None:
    """Build the bundled sample dataset from pinned real sources (Debian packages, sha256-checked)."""
    from vigil.data.sample import SampleSpec, build_sample
    from vigil.data.sources import fetch_sources

    root = fetch_sources(cache)
    provenance = build_sample(root, out, SampleSpec(seed=seed, labelled=labelled, pool=pool))
    typer.echo(f"wrote {labelled} labelled + {pool} pool images to {out} "
               f"({len(provenance['vehicles'])} vehicles)")


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="vigil")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
