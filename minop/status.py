"""Writes to the custom resource itself: finalizer and status (with the last-handled spec).

Finalizers change through JSON patches guarded by a ``test`` op, so another
controller's finalizer is never dropped; status through the status
subresource, once per reconcile and not at all when nothing changed. The spec a
hook handled is recorded in ``status.lastHandledSpec`` in the same write as the
conditions and ``observedGeneration`` of that hook's body: one request, and a
crash can never record a spec without its status or the other way round.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from minop.apierrors import ApiError, Conflict
from minop.conditions import Condition, merge
from minop.kube import Kube
from minop.objects import Obj
from minop.resource import Kind, Resource

FINALIZER = "minop.dev/finalizer"
# minop 0.1.0 kept the handled spec in this annotation; still read, never written.
LAST_HANDLED = "minop.dev/last-handled-spec"
LAST_HANDLED_FIELD = "lastHandledSpec"
# Answers to a status write that refuse its content: the hook's result is at fault, and
# sending it again cannot help (404: gone; 401/403: our credentials; 409/429: retry).
_REFUSED = frozenset({400, 413, 422})


class InvalidStatus(Exception):
    """A hook's result that is no status: not a dict, not JSON, or refused by the API
    server. The hook's failure (its backoff and tries), never API trouble."""


def refusal(error: ApiError) -> InvalidStatus | None:
    """The API server refused a status write's content: which fields, and its message."""
    if error.status not in _REFUSED:
        return None
    named = ", ".join(str(c["field"]) for c in error.causes if c.get("field"))
    return InvalidStatus(
        f"status refused by the API server ({named or error.reason}): {error.message}"
    )


def spec_of(resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
    return {f: obj.get(f) for f in resource.spec_fields}


def last_handled(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The spec last handled. Shared between calls, so read only (hooks get copies): a
    pass asks for it more than once, and every pass over an unchanged object for the
    same one."""
    raw = (obj.get("status") or {}).get(LAST_HANDLED_FIELD) or (
        (obj.get("metadata") or {}).get("annotations") or {}
    ).get(LAST_HANDLED)
    return _parsed(raw) if raw and isinstance(raw, str) else None


@functools.lru_cache(maxsize=1024)
def _parsed(raw: str) -> dict[str, Any] | None:
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
            raise InvalidStatus(f"a hook returned {type(result).__name__}; return a dict or None")
        for k, v in result.items():
            if v is None:
                status.pop(k, None)
                continue
            try:
                json.dumps({k: v}, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise InvalidStatus(
                    f"status field {k!r}: {type(v).__name__} is no JSON: {e}"
                ) from e
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
