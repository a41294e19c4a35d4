"""The shipped configs (the project's configs/ folder), found by name: `mlp train --config
fast99` from any folder. An install carries them as the package data mlpcli.configs
(setup.py maps that package to configs/); a source tree has them beside the package."""

from __future__ import annotations

import re
from pathlib import Path

SUFFIX = ".toml"


def folder() -> Path | None:
    """Where the shipped configs are, or None when neither place has them."""
    package = Path(__file__).resolve().parent
    for place in (package / "configs", package.parent / "configs"):  # installed; a clone
        if place.is_dir() and any(place.glob(f"*{SUFFIX}")):
            return place
    return None


def names() -> list[str]:
    place = folder()
    return sorted(p.stem for p in place.glob(f"*{SUFFIX}")) if place else []


def path(name: str) -> Path | None:
    """The shipped config called `name` (fast99, with or without .toml), or None."""
    place, stem = folder(), name.removesuffix(SUFFIX)
    if place is None or stem not in names():
        return None
    return place / f"{stem}{SUFFIX}"


def summary(name: str, width: int = 90) -> str:
    """The first sentence of the config's opening comment, cut to `width` characters."""
    lines = []
    for line in path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    sentence = re.split(r"(?<=\.)\s+(?=[A-Z])", text, maxsplit=1)[0]  # "et al. 2003" stays
    if len(sentence) > width:
        sentence = sentence[: width - 3].rsplit(" ", 1)[0] + "..."
    return sentence
