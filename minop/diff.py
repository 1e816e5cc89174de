"""Structural diff of two specs, as handed to ``minop_update`` (``ctx.diff``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Change(NamedTuple):
    op: str  # "add" | "change" | "remove"
    path: tuple[str | int, ...]
    old: Any
    new: Any


def diff(old: Any, new: Any, path: tuple[str | int, ...] = ()) -> list[Change]:
    """Changes from ``old`` to ``new``; dicts are walked, lists and scalars compared whole."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[Change] = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in old:
                out.append(Change("add", (*path, key), None, new[key]))
            elif key not in new:
                out.append(Change("remove", (*path, key), old[key], None))
            else:
                out.extend(diff(old[key], new[key], (*path, key)))
        return out
    if old == new:
        return []
    if old is None:
        return [Change("add", path, None, new)]
    if new is None:
        return [Change("remove", path, old, None)]
    return [Change("change", path, old, new)]
