"""Children: stamping ownership onto desired objects and deciding when to send them.

``Context.apply`` sends a server-side apply only when the cached child differs
from the desired state on the fields minop sets, or when the desired state
changed since the last apply (an annotation records its hash, so a field the
plugin stops setting is released). This is what makes a restart over
converged objects cost zero writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from minop import quantity
from minop.objects import (
    DATA_FIELDS,
    HASH_KEY,
    content_hash,
    copy_tree,
    data_hash,
    owner_reference,
)

APPLIED_HASH = "minop.dev/applied-hash"


def prepare(
    child: Mapping[str, Any], owner: Mapping[str, Any], labels: Mapping[str, str]
) -> dict[str, Any]:
    """Desired child with namespace, labels, owner reference and content hash set."""
    out = copy_tree(dict(child))
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


def _quantity(v: Any) -> Fraction | None:
    """A Kubernetes quantity's value (strings and numbers), None if it is none."""
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        return None
    try:
        return quantity.value(v)
    except ValueError:
        return None


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return True
    want = desired["metadata"]["annotations"][APPLIED_HASH]
    have = (live.get("metadata") or {}).get("annotations", {}).get(APPLIED_HASH)
    if want != have:
        return True
    hashed = HASH_KEY in live
    # cached as a hash: compare the content that way
    if hashed and data_hash(desired) != live[HASH_KEY]:
        return True
    return not subset(_comparable(desired, hashed), live)


def _comparable(desired: Mapping[str, Any], hashed: bool) -> dict[str, Any]:
    # status is never applied; apiVersion may be served in another version; the data
    # of a child cached as a hash was compared above, a child cached whole compares it here.
    skip = ("status", "apiVersion", *(DATA_FIELDS if hashed else ()))
    return {k: v for k, v in desired.items() if k not in skip}
