"""Writes to the custom resource itself: finalizer and status (with the last-handled spec).

Finalizers change through JSON patches guarded by a ``test`` op, so another
controller's finalizer is never dropped; status through the status
subresource, once per reconcile and not at all when nothing changed. The spec a
hook handled is recorded in ``status.lastHandledSpec`` in the same write as the
conditions and ``observedGeneration`` of that hook's body: one request, and a
crash can never record a spec without its status or the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from minop.apierrors import ApiError, Conflict
from minop.conditions import Condition, merge
from minop.kube import Kube, Obj
from minop.resource import Kind, Resource

FINALIZER = "minop.dev/finalizer"
# minop 0.1.0 kept the handled spec in this annotation; still read, never written.
LAST_HANDLED = "minop.dev/last-handled-spec"
LAST_HANDLED_FIELD = "lastHandledSpec"


def spec_of(resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
    return {f: obj.get(f) for f in resource.spec_fields}


def last_handled(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = (obj.get("status") or {}).get(LAST_HANDLED_FIELD) or (
        (obj.get("metadata") or {}).get("annotations") or {}
    ).get(LAST_HANDLED)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None  # mangled by hand: treat as never handled, the hooks are idempotent
    return value if isinstance(value, dict) else None


def has_finalizer(obj: Mapping[str, Any]) -> bool:
    return FINALIZER in ((obj.get("metadata") or {}).get("finalizers") or [])


def _json_patch(kube: Kube, kind: Kind, obj: Obj, ops: list[dict[str, Any]]) -> Obj:
    meta = obj["metadata"]
    try:
        return kube.patch(kind, meta["name"], ops, meta.get("namespace"), patch_type="json")
    except ApiError as e:
        if e.status == 422:  # a failed "test": the object changed under us; retry later
            raise Conflict(409, "Conflict", f"finalizers changed concurrently: {e.message}") from e
        raise


def add_finalizer(kube: Kube, kind: Kind, obj: Obj) -> Obj:
    meta = obj["metadata"]
    current = meta.get("finalizers")
    if current:
        ops = [
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ]
    else:
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ]
    return _json_patch(kube, kind, obj, ops)


def remove_finalizer(kube: Kube, kind: Kind, obj: Obj) -> Obj:
    i = obj["metadata"]["finalizers"].index(FINALIZER)
    path = f"/metadata/finalizers/{i}"
    ops = [{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]
    return _json_patch(kube, kind, obj, ops)


def new_status(
    obj: Mapping[str, Any],
    results: list[Any],
    conditions: list[Condition],
    *,
    handled: Mapping[str, Any] | None = None,
    observe: bool = True,
) -> dict[str, Any]:
    """The status after merging hook results (a None value removes a key) into ``obj``'s,
    the body the hook was given: its generation becomes ``observedGeneration`` (unless
    ``observe`` is False: a timer observes no spec), ``handled`` the last-handled spec."""
    current = dict(obj.get("status") or {})
    status = dict(current)
    for result in results:
        if result is None:
            continue
        if not isinstance(result, Mapping):
            raise TypeError(f"a hook returned {type(result).__name__}; return a dict or None")
        for k, v in result.items():
            if v is None:
                status.pop(k, None)
            else:
                status[k] = v
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is not None and observe:
        status["observedGeneration"] = generation
    if handled is not None:
        status[LAST_HANDLED_FIELD] = json.dumps(handled, sort_keys=True, separators=(",", ":"))
    if conditions or "conditions" in current:
        status["conditions"] = merge(
            current.get("conditions"), conditions, status.get("observedGeneration")
        )
    return status


def write_status(kube: Kube, kind: Kind, obj: Obj, status: dict[str, Any]) -> Obj | None:
    """Patch the status subresource; None (and no request) when nothing changed."""
    current = obj.get("status") or {}
    if status == current:
        return None
    patch: dict[str, Any] = {k: v for k, v in status.items() if current.get(k) != v}
    patch.update({k: None for k in current if k not in status})
    meta = obj["metadata"]
    return kube.patch(
        kind, meta["name"], {"status": patch}, meta.get("namespace"), subresource="status"
    )
