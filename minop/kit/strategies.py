"""Hypothesis strategies for objects a CRD version accepts (for property tests of
``minop_convert``: every valid object of every version must round-trip unchanged).

Built from the version's OpenAPI schema: types, bounds, enums, patterns, required
fields and free-form objects. CEL rules are not evaluated: conversion must be
lossless for what the schema admits, a stronger property. Needs ``hypothesis``
(a test dependency, not the runtime's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

_JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=8)
_FREE = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_QUANTITY = st.sampled_from(["1", "100m", "1Gi", "128Mi", "2", "0.5"])


def from_schema(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values ``schema`` (one OpenAPI v3 node of a structural CRD) accepts."""
    if schema.get("x-kubernetes-int-or-string"):
        return _QUANTITY | st.integers(0, 64)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return st.dictionaries(st.text(min_size=1, max_size=6), _FREE, max_size=3)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    typ = schema.get("type")
    if typ == "object":
        return _object(schema)
    if typ == "array":
        return st.lists(from_schema(schema["items"]), max_size=min(schema.get("maxItems", 3), 3))
    if typ == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if typ == "boolean":
        return st.booleans()
    if typ == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= schema.get("maxLength", 64)
            )
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 12), 12)
        )
    raise ValueError(f"no strategy for schema {dict(schema)}")


def _object(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties")
    if props is None:
        extra = schema.get("additionalProperties")
        values = from_schema(extra) if isinstance(extra, Mapping) else _FREE
        return st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=3)
    required = set(schema.get("required") or ())
    return st.fixed_dictionaries(
        {k: from_schema(v) for k, v in props.items() if k in required},
        optional={k: from_schema(v) for k, v in props.items() if k not in required},
    )


def objects(crd: Mapping[str, Any], version: str) -> st.SearchStrategy[dict[str, Any]]:
    """Whole objects of ``version`` (name, labels, annotations, spec; no status). Empty
    label and annotation maps are left out: the API server never stores them."""
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    spec = entry["schema"]["openAPIV3Schema"]["properties"]["spec"]
    names = crd["spec"]["names"]
    meta = st.fixed_dictionaries(
        {"name": st.just("x"), "namespace": st.just("ns"), "uid": st.just("u")},
        optional={
            "labels": st.dictionaries(
                st.sampled_from(["a", "b/c"]), st.text(max_size=4), max_size=2
            ),
            "annotations": st.dictionaries(
                st.sampled_from(["note", "x.io/y"]), st.text(max_size=4), min_size=1, max_size=2
            ),
        },
    )
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just(f"{crd['spec']['group']}/{version}"),
            "kind": st.just(names["kind"]),
            "metadata": meta,
            "spec": from_schema(spec),
        }
    )
