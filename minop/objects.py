"""The vocabulary of Kubernetes objects every layer shares: ``Obj``, an object's
``Key`` (kind, namespace, name), its resourceVersion and uid, the labels and owner
references minop puts on children, and the content hashes that stand in for data the
cache never keeps (a Secret's)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar

from minop.resource import Kind

Obj = dict[str, Any]
T = TypeVar("T")

# the labels of every child and pod (``standard_labels``)
KIND_NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "minop"
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER}"


class Key(NamedTuple):
    """An object of ``kind``; namespace ``""`` for a cluster-scoped one."""

    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.group or 'core'}/{self.kind.kind}/{self.namespace}/{self.name}"

    @classmethod
    def of(cls, kind: Kind, obj: Mapping[str, Any]) -> Key:
        meta = obj["metadata"]
        return cls(kind, meta.get("namespace") or "", meta["name"])


def rv_of(obj: Mapping[str, Any] | None) -> str:
    """An object's resourceVersion ("" for none)."""
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


# What a JSON tree's leaves are: immutable, so a copy may share them.
_ATOMS = frozenset({str, int, float, bool, type(None)})


def copy_tree(value: T) -> T:
    """A deep copy of a JSON-like tree (dicts, lists, tuples such as ``Change``, scalar
    leaves), at about a third of ``copy.deepcopy``'s cost: no memo, no dispatch per
    leaf. Anything else inside is deep-copied."""
    copied: T = _copy(value)
    return copied


def _copy(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: v if type(v) in _ATOMS else _copy(v) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _ATOMS else _copy(v) for v in value]
    if t in _ATOMS:
        return value
    if isinstance(value, tuple):
        items = [_copy(v) for v in value]
        return value._make(items) if hasattr(value, "_make") else t(items)
    return copy.deepcopy(value)


# -- labels and owner references ------------------------------------------------------


def standard_labels(owner_kind: Kind, owner_name: str, part_of: str) -> dict[str, str]:
    """The labels every child and pod of a custom resource carries."""
    return {**selector_labels(owner_kind, owner_name), "app.kubernetes.io/part-of": part_of}


def selector_labels(owner_kind: Kind, owner_name: str) -> dict[str, str]:
    """The stable subset of the labels, safe for immutable selectors."""
    return {KIND_NAME: owner_kind.kind.lower(), INSTANCE: owner_name, MANAGED_BY: MANAGER}


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# -- content hashes ---------------------------------------------------------------------

# Secrets (ours or a user's) are cached as this hash of their content, never their data.
HASH_KEY = "minop.dev/content-hash"
DATA_FIELDS = ("data", "stringData", "binaryData")
# Annotations that copy an object's content: kubectl apply keeps the whole last
# applied manifest, a Secret's data included.
DATA_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def content_hash(value: Any) -> str:
    """A short, stable hash of any JSON-like value (keys in any order)."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stored_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The content fields as the API server stores them: ``stringData`` (write-only)
    folded into ``data`` base64-encoded, which is what a Secret reads back as."""
    content = {k: obj[k] for k in ("data", "binaryData") if obj.get(k)}
    if obj.get("stringData"):
        encoded = {
            k: base64.b64encode(str(v).encode()).decode() for k, v in obj["stringData"].items()
        }
        content["data"] = {**(content.get("data") or {}), **encoded}
    return content


def data_hash(obj: Mapping[str, Any]) -> str:
    """The hash the cache keeps of an object's content instead of its data (what
    ``ctx.child_hash`` and ``ctx.related_hash`` return)."""
    return content_hash(stored_data(obj))


def hash_only(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep metadata and a hash of the content; drop the data itself, and every
    annotation that copies it."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    if meta.get("annotations"):
        annotations = meta["annotations"]
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in DATA_ANNOTATIONS}
    out = {k: v for k, v in obj.items() if k not in (*DATA_FIELDS, "metadata")}
    return {**out, "metadata": meta, HASH_KEY: data_hash(obj)}
