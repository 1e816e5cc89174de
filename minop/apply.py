"""Children: stamping ownership onto desired objects and deciding when to send them.

``Context.apply`` sends a server-side apply only when the cached child differs
from the desired state on the fields minop sets, or when the desired state
changed since the last apply (an annotation records its hash, so a field the
plugin stops setting is released). This is what makes a restart over
converged objects cost zero writes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from minop.resource import Kind

KIND_NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
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
    """True if every value in ``desired`` is present and equal in ``live``, as the API
    server stores it: extra keys in ``live`` (server defaults, other managers' fields)
    are fine, a ``None`` in ``desired`` means absent, quantities compare by value
    (``1000m`` is ``1``); lists must match element by element.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(
            live.get(k) is None if v is None else (k in live and subset(v, live[k]))
            for k, v in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(subset(d, v) for d, v in zip(desired, live, strict=True))
    if desired == live:
        return True
    a, b = _quantity(desired), _quantity(live)
    return a is not None and a == b


_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_SUFFIX = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** e for s, e in (("n", -9), ("u", -6), ("m", -3), ("", 0))},
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
}


def _quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity's value (strings and numbers), None if it is none."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    m = _QUANTITY.match(str(value))
    if m is None:
        return None
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2) or ""]
    except InvalidOperation:
        return None


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


def hash_only(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep metadata and a hash of the content; drop the data itself."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    out = {k: v for k, v in obj.items() if k not in (*DATA_FIELDS, "metadata")}
    return {**out, "metadata": meta, HASH_KEY: content_hash(stored_data(obj))}


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return True
    want = desired["metadata"]["annotations"][APPLIED_HASH]
    have = (live.get("metadata") or {}).get("annotations", {}).get(APPLIED_HASH)
    if want != have:
        return True
    # cached as a hash: compare the content that way
    if HASH_KEY in live and content_hash(stored_data(desired)) != live[HASH_KEY]:
        return True
    return not subset(_comparable(desired), live)


def _comparable(desired: Mapping[str, Any]) -> dict[str, Any]:
    # status is never applied; apiVersion may be served in another version; data of
    # hash-cached kinds was compared above.
    skip = ("status", "apiVersion", *DATA_FIELDS)
    return {k: v for k, v in desired.items() if k not in skip}
