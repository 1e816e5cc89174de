"""Children: stamping ownership onto desired objects and deciding when to send them.

``Context.apply`` sends a server-side apply only when the cached child differs
from the desired state on the fields minop sets, or when the desired state
changed since the last apply (an annotation records its hash, so a field the
plugin stops setting is released). This is what makes a restart over
converged objects cost zero writes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from minop.resource import Kind

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "minop"
APPLIED_HASH = "minop.dev/applied-hash"
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER}"
# Secrets (ours or a user's) are cached as this hash of their content, never their data.
HASH_KEY = "minop.dev/content-hash"
DATA_FIELDS = ("data", "stringData", "binaryData")


def content_hash(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def standard_labels(owner_kind: Kind, owner_name: str, part_of: str) -> dict[str, str]:
    """The labels every child and pod of a custom resource carries."""
    return {
        "app.kubernetes.io/name": owner_kind.kind.lower(),
        "app.kubernetes.io/instance": owner_name,
        MANAGED_BY: MANAGER,
        "app.kubernetes.io/part-of": part_of,
    }


def selector_labels(owner_kind: Kind, owner_name: str) -> dict[str, str]:
    """The stable subset of the labels, safe for immutable selectors."""
    return {
        "app.kubernetes.io/name": owner_kind.kind.lower(),
        "app.kubernetes.io/instance": owner_name,
        MANAGED_BY: MANAGER,
    }


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


def prepare(child: Mapping[str, Any], owner: Mapping[str, Any], labels: Mapping[str, str]) -> dict:
    """Desired child with namespace, labels, owner reference and content hash set."""
    out = copy.deepcopy(dict(child))
    meta = out.setdefault("metadata", {})
    if not meta.get("name"):
        raise ValueError(f"child {out.get('kind')} has no metadata.name")
    owner_ns = owner["metadata"].get("namespace")
    if owner_ns:
        if meta.get("namespace", owner_ns) != owner_ns:
            raise ValueError(
                f"child {out.get('kind')}/{meta['name']}: namespace {meta['namespace']!r} "
                f"differs from its owner's {owner_ns!r} (owner references cannot cross namespaces)"
            )
        meta["namespace"] = owner_ns
    meta["labels"] = {**labels, **(meta.get("labels") or {})}
    meta["ownerReferences"] = [owner_reference(owner)]
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(APPLIED_HASH, None)
    meta["annotations"] = annotations
    annotations[APPLIED_HASH] = content_hash(out)
    return out


def subset(desired: Any, live: Any) -> bool:
    """True if every value in ``desired`` is present and equal in ``live``.

    Extra keys in ``live`` (server defaults, other managers' fields) are fine;
    lists must match element by element.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(k in live and subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(subset(d, v) for d, v in zip(desired, live, strict=True))
    return bool(desired == live)


def hash_only(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep metadata and a hash of the content; drop the data itself."""
    content = {k: obj.get(k) for k in DATA_FIELDS if k in obj}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    out = {k: v for k, v in obj.items() if k not in (*DATA_FIELDS, "metadata")}
    return {**out, "metadata": meta, HASH_KEY: content_hash(content)}


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return True
    want = desired["metadata"]["annotations"][APPLIED_HASH]
    have = (live.get("metadata") or {}).get("annotations", {}).get(APPLIED_HASH)
    if want != have:
        return True
    if HASH_KEY in live:  # cached as a hash: compare the content that way
        content = {k: desired[k] for k in DATA_FIELDS if k in desired}
        if content_hash(content) != live[HASH_KEY]:
            return True
    return not subset(_comparable(desired), live)


def _comparable(desired: Mapping[str, Any]) -> dict[str, Any]:
    # status is never applied; apiVersion may be served in another version; data of
    # hash-cached kinds was compared above.
    skip = ("status", "apiVersion", *DATA_FIELDS)
    return {k: v for k, v in desired.items() if k not in skip}
