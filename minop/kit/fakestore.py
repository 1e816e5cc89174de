"""What a FakeApi stores, as the API server stores it: resourceVersions, generation
on spec changes, the status subresource, finalizers and deletionTimestamp, owner
garbage collection, optimistic concurrency and the patch types minop sends. Every
change appends to ``watch_log``; ``minop.kit.fakeapi`` answers requests with it."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from minop.objects import Obj
from minop.resource import Kind

ObjectKey = tuple[Kind, str, str]  # kind, namespace ("" if cluster-scoped), name


class Refused(Exception):
    """The server's refusal of a request: its HTTP status, reason and message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class FakeStore:
    """``validate(kind, obj)`` returns why the server refuses an object (422), or None;
    ``rv_format`` turns the resourceVersion counter into the string clients see (real
    servers other than kube-apiserver need not use numbers)."""

    def __init__(
        self,
        kinds: Iterable[Kind],
        *,
        validate: Callable[[Kind, Obj], str | None] = lambda kind, obj: None,
        rv_format: Callable[[int], str] = str,
    ) -> None:
        self.kinds = {(k.group, k.version, k.plural): k for k in kinds}
        self.validate, self.rv_format = validate, rv_format
        self.objects: dict[ObjectKey, Obj] = {}
        self.watch_log: dict[Kind, list[tuple[str, Obj]]] = {k: [] for k in self.kinds.values()}
        self.applied: list[Obj] = []  # the bodies of minop's server-side applies, stored
        self._counter = itertools.count(1)
        self._lock = threading.RLock()

    # -- a user's side -----------------------------------------------------------------

    def put(self, kind: Kind, obj: Obj) -> Obj:
        """A user's create or edit (main resource: status and metadata the server owns
        are kept)."""
        with self._lock:
            meta = obj["metadata"]
            old = self.objects.get(self._key(kind, meta.get("namespace"), meta["name"]))
            new = copy.deepcopy(obj)
            if old is not None:
                keep = ("uid", "generation", "finalizers", "deletionTimestamp")
                new["metadata"].update(
                    {k: old["metadata"][k] for k in keep if k in old["metadata"]}
                )
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            return self._store(kind, new, old)

    def remove(self, kind: Kind, namespace: str, name: str) -> None:
        """A user's delete (finalizers hold it: deletionTimestamp)."""
        with self._lock:
            self._delete(kind, namespace, name)

    def update(self, kind: Kind, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj:
        """A change of what ``put`` keeps (finalizers another controller adds, the
        deletionTimestamp, the status): ``change`` edits a copy, which is stored."""
        with self._lock:
            old = self.objects[self._key(kind, namespace, name)]
            new = copy.deepcopy(old)
            change(new)
            return self._store(kind, new, old)

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self.objects.get(self._key(kind, namespace, name))
            return copy.deepcopy(obj)

    def all(self, kind: Kind) -> list[Obj]:
        with self._lock:
            return [copy.deepcopy(o) for (k, _, _), o in sorted(self.objects.items(), key=_order)
                    if k == kind]  # fmt: skip

    def resource_version(self) -> str:
        return self.rv_format(next(self._counter))

    # -- storing ---------------------------------------------------------------------

    def _key(self, kind: Kind, namespace: str | None, name: str) -> ObjectKey:
        return kind, (namespace or "") if kind.namespaced else "", name

    def _store(self, kind: Kind, obj: Obj, old: Obj | None) -> Obj:
        meta = obj["metadata"]
        if old is not None and _same(old, obj):
            return copy.deepcopy(old)  # a no-op write: no new version, no event
        reason = self.validate(kind, obj)
        if reason:
            raise Refused(422, "Invalid", reason)
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        n = next(self._counter)
        meta.setdefault("uid", f"uid-{n}")
        meta["resourceVersion"] = self.rv_format(n)
        if old is None or old.get("spec") != obj.get("spec"):
            meta["generation"] = int((old or {}).get("metadata", {}).get("generation") or 0) + 1
        self.objects[self._key(kind, meta.get("namespace"), meta["name"])] = obj
        self.watch_log[kind].append(("ADDED" if old is None else "MODIFIED", copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    def _delete(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        key = self._key(kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            raise Refused(404, "NotFound", f"{kind.plural} {name!r} not found")
        if obj["metadata"].get("finalizers"):
            if obj["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(obj)
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            return self._store(kind, new, obj)
        return self._gone(key)

    def _gone(self, key: ObjectKey) -> Obj:
        obj = self.objects.pop(key)
        obj["metadata"]["resourceVersion"] = self.resource_version()
        self.watch_log[key[0]].append(("DELETED", copy.deepcopy(obj)))
        uid = obj["metadata"]["uid"]
        # the garbage collector: dependents go with their owner
        for k, o in list(self.objects.items()):
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                self._delete(k[0], k[1], k[2])
        return copy.deepcopy(obj)

    def _write(self, method: str, kind: Kind, ns: str, name: str, sub: str | None, body: Any,
               content_type: str) -> Obj:  # fmt: skip
        key = self._key(kind, ns, name)
        if method == "DELETE":
            return self._delete(kind, ns, name)
        old = self.objects.get(key)
        if method == "POST":
            if old is not None:
                raise Refused(409, "AlreadyExists", f"{kind.plural} {name!r} already exists")
            new = copy.deepcopy(body)
            if ns:
                new["metadata"].setdefault("namespace", ns)
            return self._store(kind, new, None)
        if method == "PUT":  # optimistic concurrency, as the API server's
            if old is None:
                raise Refused(404, "NotFound", f"{kind.plural} {name!r} not found")
            if body["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
                raise Refused(409, "Conflict", f"{kind.plural} {name!r} was modified")
            return self._store(kind, copy.deepcopy(body), old)
        assert method == "PATCH", method
        if content_type.startswith("application/apply-patch"):
            new = copy.deepcopy(old) if old is not None else {"metadata": {}}
            for field, value in body.items():
                if field == "metadata":
                    new["metadata"].update(copy.deepcopy(value))
                elif field != "status":
                    new[field] = copy.deepcopy(value)
            stored = self._store(kind, new, old)
            self.applied.append(copy.deepcopy(body))
            return stored
        if old is None:
            raise Refused(404, "NotFound", f"{kind.plural} {name!r} not found")
        new = copy.deepcopy(old)
        if sub == "status":
            status = new.setdefault("status", {})
            for k, v in body["status"].items():
                if v is None:
                    status.pop(k, None)
                else:
                    status[k] = v
        elif content_type == "application/json-patch+json":
            _json_patch(new, body)
        elif content_type == "application/merge-patch+json":
            _merge_patch(new, body)
        else:
            raise AssertionError(f"unexpected patch {content_type} {body}")
        stored = self._store(kind, new, old)
        meta = stored["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._gone(key)
        return stored


def _merge_patch(obj: Obj, patch: Obj) -> None:
    """RFC 7386: objects merge, null removes, anything else replaces."""
    for k, v in patch.items():
        if v is None:
            obj.pop(k, None)
        elif isinstance(v, dict):
            old = obj.get(k)
            target: Obj = old if isinstance(old, dict) else {}
            _merge_patch(target, v)
            obj[k] = target
        else:
            obj[k] = copy.deepcopy(v)


def _json_patch(obj: Obj, ops: list[Obj]) -> None:
    for op in ops:
        *path, last = op["path"].split("/")[1:]
        target: Any = obj
        for p in path:
            target = target[int(p)] if isinstance(target, list) else target[p]
        have = (target[int(last)] if last.isdigit() and int(last) < len(target) else None) if (
            isinstance(target, list)) else target.get(last)  # fmt: skip
        if op["op"] == "test" and have != op["value"]:
            raise Refused(422, "Invalid", f"test failed at {op['path']}")
        if op["op"] == "add":
            if isinstance(target, list):
                target.append(op["value"])
            else:
                target[last] = op["value"]
        elif op["op"] == "remove":
            del target[int(last)]


def _same(old: Obj, new: Obj) -> bool:
    """A write that changes nothing but the version fields."""
    strip = ("resourceVersion", "generation")

    def norm(o: Obj) -> Obj:
        return {**o, "metadata": {k: v for k, v in o["metadata"].items() if k not in strip}}

    return norm(old) == norm(new)


def _order(item: tuple[ObjectKey, Obj]) -> tuple[str, str]:
    (_, ns, name), _ = item
    return ns, name
