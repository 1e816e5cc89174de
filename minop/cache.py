"""The read side: what the watchers hold, looked up by kind, namespace and labels.

Hooks and the dispatcher read from here, never from the API server, so a
reconcile over converged objects costs no requests at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from minop.apply import HASH_KEY
from minop.kube import Obj
from minop.resource import Kind
from minop.watch import Watcher


def _older(obj: Obj, cached: Obj | None) -> bool:
    """``obj`` is older than what the watch already cached. A write's response can
    arrive after the watch delivered later changes (a StatefulSet's status written by
    its controller within milliseconds): storing it would leave a stale object in the
    cache until the next event, possibly never. resourceVersions are etcd revisions;
    compared as integers like client-go's MutationCache, else treated as not older."""
    if cached is None:
        return False
    try:
        return int(obj["metadata"]["resourceVersion"]) < int(cached["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False


def matches(obj: Obj, labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


class Cache:
    def __init__(self) -> None:
        self._watchers: dict[Kind, list[Watcher]] = {}
        self._named: dict[tuple[Kind, str, str], Watcher] = {}
        self._referrers: dict[tuple[Kind, str, str], set[Any]] = {}
        self._lock = threading.Lock()

    def add(self, watcher: Watcher) -> None:
        self._watchers.setdefault(watcher.kind, []).append(watcher)

    def watchers(self) -> list[Watcher]:
        with self._lock:
            named = list(self._named.values())
        return [w for ws in self._watchers.values() for w in ws] + named

    def synced(self) -> bool:
        return all(w.synced.is_set() for ws in self._watchers.values() for w in ws)

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        ns = namespace if kind.namespaced else ""
        for w in self._watchers.get(kind, ()):
            obj = w.get(ns, name)
            if obj is not None:
                return obj
        return None

    def select(self, kind: Kind, namespace: str, labels: Mapping[str, str]) -> list[Obj]:
        out = [
            o
            for w in self._watchers.get(kind, ())
            for o in w.items()
            if o["metadata"].get("namespace", "") == namespace and matches(o, labels)
        ]
        return sorted(out, key=lambda o: o["metadata"]["name"])

    def remember(self, kind: Kind, obj: Obj, *, only_if_present: bool = False) -> None:
        """Record our own write's result before its watch event arrives.

        ``only_if_present`` never resurrects an object whose DELETED event came
        first (e.g. the answer to removing the last finalizer).
        """
        ns = obj["metadata"].get("namespace", "")
        key = (ns, obj["metadata"]["name"])
        for w in self._watchers.get(kind, ()):
            if w.namespace in (None, ns) and w.label_selector is None and w.field_selector is None:
                if only_if_present and key not in w.cache:
                    return
                if not _older(obj, w.cache.get(key)):
                    w.cache[key] = w.transform(obj)
                return
        for w in self._watchers.get(kind, ()):  # children: the labelled watcher
            if w.namespace in (None, ns):
                if not _older(obj, w.cache.get(key)):
                    w.cache[key] = w.transform(obj)
                return

    # -- referenced objects, watched one by one by name --------------------------

    def track(
        self,
        kind: Kind,
        namespace: str,
        names: list[str],
        referrer: Any,
        start: Callable[[Kind, str, str], Watcher],
    ) -> list[Watcher]:
        """Make ``referrer`` refer to exactly ``names``; watch new names, drop unused ones.

        Returns the watchers started for names nobody referred to before.
        """
        wanted = {(kind, namespace, n) for n in names}
        to_stop: list[Watcher] = []
        started: list[Watcher] = []
        with self._lock:
            for ref, who in list(self._referrers.items()):
                if ref[0] == kind and referrer in who and ref not in wanted:
                    who.discard(referrer)
                    if not who:
                        del self._referrers[ref]
                        to_stop.append(self._named.pop(ref))
            for ref in wanted:
                self._referrers.setdefault(ref, set()).add(referrer)
                if ref not in self._named:
                    self._named[ref] = start(*ref)
                    started.append(self._named[ref])
        for w in to_stop:
            w.stop()
        return started

    def untrack(self, referrer: Any) -> None:
        to_stop: list[Watcher] = []
        with self._lock:
            for ref, who in list(self._referrers.items()):
                who.discard(referrer)
                if not who:
                    del self._referrers[ref]
                    to_stop.append(self._named.pop(ref))
        for w in to_stop:
            w.stop()

    def referrers(self, kind: Kind, namespace: str, name: str) -> set[Any]:
        with self._lock:
            return set(self._referrers.get((kind, namespace, name), ()))

    def related_hash(self, kind: Kind, namespace: str, name: str) -> str | None:
        with self._lock:
            w = self._named.get((kind, namespace, name))
        if w is None:
            return None
        obj = w.get(namespace, name)
        return None if obj is None else str(obj[HASH_KEY])

    def related_synced(self, kind: Kind, namespace: str, name: str) -> bool:
        with self._lock:
            w = self._named.get((kind, namespace, name))
        return w is not None and w.synced.is_set()
