"""How every `vigil` command reports a user error: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from vigil.errors import VigilError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn a VigilError into `error: <where>: <what> — <hint>` on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VigilError as exc:
            typer.echo(f"error: {exc.render()}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
