"""Helpers for ``minop_convert``: moving fields and keeping what a version lacks.

Conversion must be lossless both ways: an object written in the newer version and
read (or edited) through an older one must come back with every field. What the
older version has no field for is kept in one annotation (``ANNOTATION``, compact
JSON by field path) and restored, and the annotation removed, on the way back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from minop import ConversionError

ANNOTATION = "conversion.minop.dev/kept"
_MISSING = object()


def _parent(body: MutableMapping[str, Any], path: str, create: bool) -> tuple[Any, str]:
    *heads, last = path.split(".")
    node: Any = body
    for h in heads:
        if not isinstance(node, MutableMapping):
            return None, last
        if h not in node and create:
            node[h] = {}
        node = node.get(h)
    return (node if isinstance(node, MutableMapping) else None), last


def pop(body: MutableMapping[str, Any], path: str, default: Any = None) -> Any:
    """Remove the field at ``path`` (dotted, e.g. ``spec.memcached.threads``) and return
    it (``default`` when absent)."""
    parent, last = _parent(body, path, create=False)
    if parent is None or last not in parent:
        return default
    return parent.pop(last)


def put(body: MutableMapping[str, Any], path: str, value: Any) -> None:
    """Set the field at ``path``, creating parents; ``None`` sets nothing."""
    if value is None:
        return
    parent, last = _parent(body, path, create=True)
    if parent is None:
        raise ValueError(f"{path}: a parent is not an object")
    parent[last] = value


def move(body: MutableMapping[str, Any], source: str, target: str) -> None:
    """Rename a field: ``source`` to ``target`` (absent stays absent)."""
    put(body, target, pop(body, source))


def keep(body: MutableMapping[str, Any], *paths: str) -> None:
    """Take the fields at ``paths`` out of ``body`` into the annotation (the target
    version has no place for them)."""
    kept = _kept(body)
    for path in paths:
        value = pop(body, path, _MISSING)
        if value is not _MISSING:
            kept[path] = value
    _store(body, kept)


def restore(body: MutableMapping[str, Any]) -> None:
    """Put every field the annotation kept back, and remove the annotation."""
    kept = _kept(body)
    _store(body, {})
    for path, value in kept.items():
        put(body, path, value)


def _kept(body: Mapping[str, Any]) -> dict[str, Any]:
    raw = ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return {}
    try:
        kept = json.loads(raw)
    except ValueError:
        kept = None
    if not isinstance(kept, dict):
        raise ConversionError(f"metadata.annotations.{ANNOTATION}", f"not a JSON object: {raw!r}")
    return kept


def _store(body: MutableMapping[str, Any], kept: Mapping[str, Any]) -> None:
    meta = body.setdefault("metadata", {})
    annotations = meta.get("annotations")
    if kept:
        value = json.dumps(kept, sort_keys=True, separators=(",", ":"))
        meta["annotations"] = {**(annotations or {}), ANNOTATION: value}
    elif annotations and ANNOTATION in annotations:
        rest = {k: v for k, v in annotations.items() if k != ANNOTATION}
        if rest:
            meta["annotations"] = rest
        else:
            del meta["annotations"]
