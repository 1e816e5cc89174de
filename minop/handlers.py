"""Which keys an informer's event concerns, as controller-runtime's ``pkg/handler``.

An event on an object reaches, on the informer's thread:

- its own controller, when a resource owns its kind (cause ``watch``; a deletion
  leaves the reconciler its last body, for the delete hook);
- its owners' controllers (cause ``child``): by owner reference, or, for
  grandchildren such as a child Deployment's pods, by the instance label;
- its referrers' controllers (cause ``related``): the custom resources whose
  ``Related`` names it, from the cache's referrer index.

An owned kind may also be another resource's child or Related: it reaches them all.
Only the leader's controllers take events: a standby keeps its cache warm, and the
takeover queues every object in it.
With sharding every replica's controllers take events, each only for the objects in
its buckets (``Controller.admit``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from minop.cache import Cache
from minop.controller import Controller
from minop.informer import Handler
from minop.objects import INSTANCE, KIND_NAME, Key, Obj
from minop.resource import Kind

# A burst of events on an object's children (a rollout: pods created, then ready, then
# the Deployment's counts) makes one pass and one status write instead of one each, as
# Kopf's batching window: the first event queues the owner this far ahead, the rest
# join it. The object's own changes are never delayed (they queue it at once).
CHILD_BATCH = 0.1


class Handlers:
    """The event handlers of every informer, over the controllers of one manager."""

    def __init__(
        self, controllers: Mapping[Kind, Controller], cache: Cache, leading: threading.Event
    ) -> None:
        self._controllers, self._cache, self._leading = controllers, cache, leading
        self._by_ref = {(k.group, k.kind): k for k in controllers}  # an ownerReference's

    def handler(self, kind: Kind) -> Handler:
        """What an informer of ``kind`` calls with each event."""
        owned = self._controllers.get(kind)

        def handle(etype: str, obj: Obj, *, echo: bool = False) -> None:
            if not self._leading.is_set():
                return  # a standby: the store is warm, the takeover queues everything
            meta = obj.get("metadata") or {}
            # The echo of our own write: the object and its owner (who wrote it) had it
            # in the pass that wrote it. Its referrers still learn of it only now.
            if not echo:
                if owned is not None and owned.admit(key := Key.of(kind, obj), obj):
                    if etype == "DELETED":
                        owned.reconciler.deleted(key, obj)
                    owned.enqueue(key, "watch")
                for key in self.owners(meta):
                    self._enqueue(key, "child", CHILD_BATCH)
            for key in self._cache.referrers(kind, meta.get("namespace") or "", meta["name"]):
                self._enqueue(key, "related")

        return handle

    def _enqueue(self, key: Key, cause: str, delay: float = 0.0) -> None:
        c = self._controllers[key.kind]
        if c.admit(key, None):  # with sharding: only this replica's objects
            c.enqueue(key, cause, delay)

    def owners(self, meta: Obj) -> list[Key]:
        """The custom resources an object with this metadata belongs to."""
        ns = meta.get("namespace") or ""
        keys = []
        for ref in meta.get("ownerReferences") or []:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            kind = self._by_ref.get((group, str(ref.get("kind"))))
            if kind is not None:
                keys.append(Key(kind, ns if kind.namespaced else "", ref["name"]))
        if keys:
            return keys
        # Grandchildren (pods of a child Deployment) are found through their labels.
        labels = meta.get("labels") or {}
        name, instance = labels.get(KIND_NAME), labels.get(INSTANCE)
        return [
            Key(k, ns if k.namespaced else "", instance)
            for k in self._controllers
            if instance and k.kind.lower() == name
        ]
