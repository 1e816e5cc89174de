"""What one informer holds: objects by (namespace, name), indexed, with an own-write overlay.

The watch's view is only ever changed by the informer, in the order the API server
delivered it. minop's own write responses go into a separate overlay, consulted
only while it is newer than what the watch delivered (resourceVersions compared
as integers, as client-go's MutationCache does): a reconcile right after our own
write sees its result, and an old write response can never hide a newer watch
event. Indexes map an index value (e.g. the instance label) to keys, so a lookup
costs the size of its answer, not of the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from minop.kube import Obj

ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds
Indexer = Callable[[Obj], list[str]]


def obj_key(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta["name"]


def _rv(obj: Obj) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def newer(a: Obj, b: Obj) -> bool:
    """``a`` is strictly newer than ``b`` (unknown or unparseable versions: not newer)."""
    ra, rb = _rv(a), _rv(b)
    return ra is not None and rb is not None and ra > rb


class Store:
    """Thread-safe; readers get the stored dicts and must not mutate them."""

    def __init__(self, indexers: Mapping[str, Indexer] | None = None) -> None:
        self._items: dict[ObjKey, Obj] = {}
        self._overlay: dict[ObjKey, Obj] = {}
        self._indexers = dict(indexers or {})
        self._index: dict[str, dict[str, set[ObjKey]]] = {n: {} for n in self._indexers}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    # -- the watch's view (informer only) -------------------------------------------

    def upsert(self, obj: Obj) -> Obj | None:
        """Store a watched object; returns the watch's previous one."""
        key = obj_key(obj)
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            mutation = self._overlay.get(key)
            if mutation is not None and not newer(mutation, obj):
                del self._overlay[key]
                mutation = None
            self._reindex(key, old, obj)
            if mutation is not None:  # still newer: keep it findable by its own values
                self._reindex(key, None, mutation)
        return old

    def remove(self, key: ObjKey) -> Obj | None:
        """Forget a deleted object, and any write of ours to it."""
        with self._lock:
            old = self._items.pop(key, None)
            mutation = self._overlay.pop(key, None)
            for gone in (old, mutation):
                if gone is not None:
                    self._unindex(key, gone)
        return old

    def watched(self) -> dict[ObjKey, Obj]:
        """The watch's view only (for a re-list to compare against)."""
        with self._lock:
            return dict(self._items)

    # -- our own writes -------------------------------------------------------------

    def mutated(self, obj: Obj, *, only_if_present: bool = False) -> None:
        """Remember our write's response until the watch catches up with it.

        ``only_if_present`` never resurrects an object whose DELETED event came first
        (e.g. the answer to removing the last finalizer)."""
        key = obj_key(obj)
        with self._lock:
            current = self._overlay.get(key) or self._items.get(key)
            if current is None and only_if_present:
                return
            if current is not None and not newer(obj, current):
                return
            self._overlay[key] = obj
            self._reindex(key, None, obj)

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: ObjKey) -> Obj | None:
        with self._lock:
            return self._get(key)

    def _get(self, key: ObjKey) -> Obj | None:
        item, mutation = self._items.get(key), self._overlay.get(key)
        if mutation is None:
            return item
        if item is None or newer(mutation, item):
            return mutation
        del self._overlay[key]  # the watch caught up
        return item

    def keys(self) -> list[ObjKey]:
        with self._lock:
            return list(self._items.keys() | self._overlay.keys())

    def by_index(self, index: str, value: str) -> list[Obj]:
        """Objects whose ``index`` values include ``value``, sorted by name."""
        fn = self._indexers[index]
        with self._lock:
            keys = sorted(self._index[index].get(value, ()))
            found = [self._get(k) for k in keys]
        return [o for o in found if o is not None and value in fn(o)]

    # -- indexes ---------------------------------------------------------------------------

    def _reindex(self, key: ObjKey, old: Obj | None, new: Obj) -> None:
        # Entries are only added here; stale ones are filtered on read and dropped with
        # the object, so an overlay and a watched version of one key can both be indexed.
        for name, fn in self._indexers.items():
            if old is not None:
                stale = set(fn(old)) - set(fn(new))
                for value in stale:
                    self._drop(name, value, key)
            for value in fn(new):
                self._index[name].setdefault(value, set()).add(key)

    def _unindex(self, key: ObjKey, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._drop(name, value, key)

    def _drop(self, index: str, value: str, key: ObjKey) -> None:
        keys = self._index[index].get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._index[index][value]
