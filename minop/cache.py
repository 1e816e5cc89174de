"""The read side: every informer's store, looked up by kind, namespace, name and labels.

Hooks and reconcilers read from here, never from the API server, so a reconcile
over converged objects costs no requests at all. One informer per (kind,
namespace) — or one for all namespaces — serves every resource that needs the
kind: owned custom resources, children (filtered server-side by minop's label)
and objects a custom resource only references (unfiltered, kept as a content
hash). The referrer index maps a referenced object to the custom resources
that name it, both ways, so tracking costs the size of one object's references.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from minop.informer import Informer
from minop.objects import HASH_KEY, INSTANCE, KIND_NAME, Key, Obj
from minop.resource import Kind
from minop.store import Store

BY_INSTANCE = "instance"


def instance_index(obj: Obj) -> list[str]:
    """``namespace/name-label/instance-label``: children and pods of one custom resource."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    name, instance = labels.get(KIND_NAME), labels.get(INSTANCE)
    if not name or not instance:
        return []
    return [f"{meta.get('namespace') or ''}/{name}/{instance}"]


INDEXERS = {BY_INSTANCE: instance_index}


def matches(obj: Obj, labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


@dataclass(frozen=True)
class Lookup:
    """A referenced object as the cache knows it: ``synced`` False means not known yet
    (its informer has not listed), which is not the same as missing (``hash`` None)."""

    synced: bool
    hash: str | None


class Cache:
    def __init__(self) -> None:
        self._informers: dict[Kind, dict[str | None, Informer]] = {}
        self._refs: dict[Key, set[Any]] = {}  # referenced object -> referrers
        self._named: dict[Any, set[Key]] = {}  # referrer -> what it references
        self._lock = threading.Lock()

    def add(self, informer: Informer) -> None:
        self._informers.setdefault(informer.kind, {})[informer.namespace] = informer

    def informers(self) -> list[Informer]:
        return [i for by_ns in self._informers.values() for i in by_ns.values()]

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers())

    def _informer(self, kind: Kind, namespace: str) -> Informer | None:
        by_ns = self._informers.get(kind)
        if not by_ns:
            return None
        return by_ns.get(namespace if kind.namespaced else None) or by_ns.get(None)

    def store(self, kind: Kind, namespace: str) -> Store | None:
        informer = self._informer(kind, namespace)
        return None if informer is None else informer.store

    # -- reads -----------------------------------------------------------------------

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        ns = namespace if kind.namespaced else ""
        store = self.store(kind, ns)
        return None if store is None else store.get(Key(kind, ns, name))

    def select(self, kind: Kind, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
        """Objects of ``kind`` with ``labels``, by name; the labels must include the
        name and instance labels (what minop puts on every child and pod). Namespace
        ``""`` for a namespaced kind (a cluster-scoped owner's children): in every
        namespace, by namespace and name."""
        instance = f"{labels[KIND_NAME]}/{labels[INSTANCE]}"
        if namespace or not kind.namespaced:
            store = self.store(kind, namespace)
            found = [] if store is None else store.by_index(BY_INSTANCE, f"{namespace}/{instance}")
        else:
            found = []
            for informer in self._informers.get(kind, {}).values():
                for value in informer.store.index_values(BY_INSTANCE):
                    if value.partition("/")[2] == instance:
                        found.extend(informer.store.by_index(BY_INSTANCE, value))
            found.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return [o for o in found if matches(o, labels)]

    def keys(self, kind: Kind) -> Iterable[Key]:
        for informer in self._informers.get(kind, {}).values():
            yield from informer.store.keys()

    # -- our own writes -------------------------------------------------------------

    def mutated(self, kind: Kind, obj: Obj, *, only_if_present: bool = False) -> None:
        """Our write's response: seen by readers until the watch delivers as new."""
        informer = self._informer(kind, obj["metadata"].get("namespace") or "")
        if informer is not None:
            informer.store.mutated(informer.transform(obj), only_if_present=only_if_present)

    # -- referenced objects --------------------------------------------------------------

    def refer(self, referrer: Any, kind: Kind, namespace: str, names: Iterable[str]) -> None:
        """``referrer`` now references exactly ``names`` of ``kind`` (in ``namespace``
        unless the kind is cluster-scoped)."""
        namespace = namespace if kind.namespaced else ""
        wanted = {Key(kind, namespace, n) for n in names if n}
        with self._lock:
            had = self._named.get(referrer, set())
            for ref in {r for r in had if r.kind == kind} - wanted:
                self._unrefer(ref, referrer)
            for ref in wanted:
                self._refs.setdefault(ref, set()).add(referrer)
            rest = {r for r in had if r.kind != kind}
            if rest or wanted:
                self._named[referrer] = rest | wanted
            else:
                self._named.pop(referrer, None)

    def forget(self, referrer: Any) -> None:
        with self._lock:
            for ref in self._named.pop(referrer, set()):
                self._unrefer(ref, referrer)

    def _unrefer(self, ref: Key, referrer: Any) -> None:
        who = self._refs.get(ref)
        if who is not None:
            who.discard(referrer)
            if not who:
                del self._refs[ref]

    def referrers(self, kind: Kind, namespace: str, name: str) -> set[Any]:
        namespace = namespace if kind.namespaced else ""
        with self._lock:
            return set(self._refs.get(Key(kind, namespace, name), ()))

    def related(self, kind: Kind, namespace: str, name: str) -> Lookup:
        informer = self._informer(kind, namespace)
        if informer is None or not informer.synced.is_set():
            return Lookup(False, None)
        obj = informer.get(namespace if kind.namespaced else "", name)
        return Lookup(True, None if obj is None else str(obj.get(HASH_KEY) or ""))
