"""Checks an object against its CRD's OpenAPI v3 schema, as the API server would at
admission, for objects stored before the CRD was tightened (the API server never
re-validates stored objects, and ratcheting lets their unchanged fields through later
writes). A violation is reported as a ``PermanentError`` naming the field, instead of a
hook acting on a value the current schema forbids.

Covered: type (with ``x-kubernetes-int-or-string``), minimum/maximum, exclusive bounds,
min/maxLength, enum, pattern, min/maxItems, min/maxProperties, required, properties,
additionalProperties and items. Not covered: CEL rules (``x-kubernetes-validations``)
and ``format``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # an ECMA construct Python lacks: the API server checked it already
        return None


def _type_ok(schema: Mapping[str, Any], value: Any) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    t = schema.get("type")
    if t is None:
        return True
    if isinstance(value, bool) and t in ("integer", "number"):
        return False
    return isinstance(value, _TYPES.get(t, (object,)))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def violations(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[str]:
    """``"<path>: <what is wrong>"`` for each violation of ``schema`` by ``value``."""
    if value is None:
        if not schema.get("nullable"):
            yield f"{path}: must not be null"
        return
    if not _type_ok(schema, value):
        want = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        yield f"{path}: must be of type {want}, got {_show(value)}"
        return
    yield from _bounds(schema, value, path)
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                yield f"{path}.{name}: required"
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                yield from violations(props[k], v, f"{path}.{k}")
            elif isinstance(extra, Mapping):
                yield from violations(extra, v, f"{path}.{k}")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, v in enumerate(value):
            yield from violations(schema["items"], v, f"{path}[{i}]")


def _bounds(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[str]:
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(map(str, schema["enum"]))
        yield f"{path}: must be one of {allowed}, got {_show(value)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and (value < lo or (schema.get("exclusiveMinimum") and value == lo)):
            yield f"{path}: must be at least {lo}, got {value}"
        if hi is not None and (value > hi or (schema.get("exclusiveMaximum") and value == hi)):
            yield f"{path}: must be at most {hi}, got {value}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            yield f"{path}: must be at least {schema['minLength']} characters long"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{path}: must be at most {schema['maxLength']} characters long"
        rx = _regex(schema["pattern"]) if "pattern" in schema else None
        if rx is not None and not rx.search(value):
            yield f"{path}: must match {schema['pattern']}, got {_show(value)}"
    sized = (("Items", list), ("Properties", dict))
    for what, typ in sized:
        if isinstance(value, typ):
            lo, hi = schema.get(f"min{what}"), schema.get(f"max{what}")
            if lo is not None and len(value) < lo:
                yield f"{path}: must have at least {lo} {what.lower()}"
            if hi is not None and len(value) > hi:
                yield f"{path}: must have at most {hi} {what.lower()}"


def check(crd: Mapping[str, Any] | None, obj: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    """Why ``obj``'s ``fields`` (e.g. ``spec``) break the storage version's schema of
    ``crd``, as one message; empty when they do not (or there is no schema)."""
    if not crd:
        return ""
    version = next((v for v in crd.get("spec", {}).get("versions", []) if v.get("storage")), None)
    root = ((version or {}).get("schema") or {}).get("openAPIV3Schema") or {}
    props = root.get("properties") or {}
    found = [v for f in fields if f in props and f in obj for v in violations(props[f], obj[f], f)]
    if not found:
        return ""
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    return "invalid under the current CRD schema: " + "; ".join(found[:5]) + more
