"""The text prompts a teacher is asked with: one per class of `classes.txt`, or the team's own.

A prompt map (YAML or JSON: class name → a prompt, or a list of prompts) replaces the default
prompt of the classes it names; a class it does not name is prompted by its name (underscores read
as spaces). Several prompts for one class all vote for that class: the teacher scores each prompt
and a box takes the class of its best prompt. A name the dataset does not have is an error, not a
silent no-op, so a renamed class cannot lose its prompts unseen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vigil.errors import VigilError


@dataclass(frozen=True)
class Prompts:
    """The prompt texts, in the order the teacher sees them, and the class id of each."""

    texts: tuple[str, ...]
    class_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.class_ids):
            raise ValueError("every prompt needs a class id")


def default_prompt(name: str) -> str:
    """`traffic_light` → `traffic light`: what an open-vocabulary model reads best."""
    return " ".join(name.replace("_", " ").split())


def read_prompt_map(path: Path) -> dict[str, list[str]]:
    """A prompt map file (YAML or JSON) as class name → prompts; a malformed one is a VigilError."""
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError("prompt map not found", path=path) from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise VigilError(
            f"not a YAML/JSON prompt map ({str(exc).splitlines()[0]})", path=path
        ) from None
    if not isinstance(data, dict):
        raise VigilError(
            "expected a mapping of class name → prompt",
            path=path,
            hint="e.g. `person: a person walking`, or a list of prompts per class",
        )
    out: dict[str, list[str]] = {}
    for name, value in data.items():
        texts = [value] if isinstance(value, str) else value
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t.strip() for t in texts)
        ):
            raise VigilError(
                "expected a prompt or a non-empty list of prompts",
                path=path,
                field=str(name),
                hint="write each prompt as text",
            )
        out[str(name)] = [" ".join(t.split()) for t in texts]
    return out


def class_prompts(
    classes: Sequence[str],
    prompt_map: Mapping[str, Sequence[str]] | None = None,
    where: Path | None = None,
) -> Prompts:
    """The prompts of `classes` (class id = position): the map's where it names the class, else the name."""
    prompt_map = prompt_map or {}
    unknown = [name for name in prompt_map if name not in classes]
    if unknown:
        raise VigilError(
            f"class {unknown[0]!r} is not in classes.txt",
            path=where,
            field=unknown[0],
            hint=f"the dataset's classes: {', '.join(classes)}",
        )
    texts: list[str] = []
    ids: list[int] = []
    for class_id, name in enumerate(classes):
        for text in prompt_map.get(name) or [default_prompt(name)]:
            texts.append(text)
            ids.append(class_id)
    return Prompts(tuple(texts), tuple(ids))


def load_prompts(data: Path, prompt_map: Path | None = None) -> Prompts:
    """The prompts of the dataset at `data` (its classes.txt), with the optional prompt map file."""
    from vigil.data.layout import read_classes

    classes = read_classes(Path(data))
    mapping = read_prompt_map(prompt_map) if prompt_map is not None else None
    return class_prompts(classes, mapping, prompt_map)
