"""A reconciler against an in-memory API whose watch is delivered by hand.

Only for unit tests that must force an interleaving (a user's edit landing while
minop writes, a watch event older than our write): ``FakeApi`` applies writes as
the API server would (resourceVersion and generation bumps, status subresource,
finalizer JSON patches) and records them; nothing reaches the store until the
test calls ``deliver``. e2e tests always talk to a real API server.
"""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

import minop
from minop.apierrors import Conflict, NotFound
from minop.cache import INDEXERS, Cache
from minop.events import Recorder
from minop.keys import Key
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager
from minop.reconcile import Binding, Reconciler, Result
from minop.runtime import Runtime
from minop.store import Store

KIND = minop.Kind("test.minop.dev", "v1", "Widget", "widgets")
NS = "ns"


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, Any]] = []  # (verb, kind, body)
        self.rv = itertools.count(10)
        self.metrics = Metrics()
        self.fence = None
        self.on_write = lambda: None  # runs before each write: interleave a user's edit

    def _store(self, kind: minop.Kind, obj: dict[str, Any], *, spec_changed: bool) -> dict:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self.rv))
        if spec_changed:
            meta["generation"] = int(meta.get("generation") or 0) + 1
        self.objects[(kind.kind, meta.get("namespace") or "", meta["name"])] = obj
        return copy.deepcopy(obj)

    def put(self, kind: minop.Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """A user's create or edit: spec changes bump the generation."""
        key = (kind.kind, obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        old = self.objects.get(key)
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{meta['name']}-{next(self.rv)}")
        if old is not None:
            meta["uid"] = old["metadata"]["uid"]
            meta["generation"] = old["metadata"].get("generation")
            obj.pop("status", None)  # the status subresource: a main write keeps it
            if old.get("status") is not None:
                obj["status"] = copy.deepcopy(old["status"])
        changed = old is None or old.get("spec") != obj.get("spec")
        return self._store(kind, obj, spec_changed=changed)

    def live(self, kind: minop.Kind, name: str, ns: str = NS) -> dict[str, Any]:
        return copy.deepcopy(self.objects[(kind.kind, ns, name)])

    # -- what the core calls ---------------------------------------------------------

    def patch(self, kind, name, patch, namespace=None, *, patch_type="merge", subresource=None,
              params=None):  # fmt: skip
        self.on_write()
        self.writes.append((f"patch/{subresource or patch_type}", kind.kind, patch))
        if kind.kind == "Event":
            return {}
        try:
            obj = copy.deepcopy(self.objects[(kind.kind, namespace or "", name)])
        except KeyError:
            raise NotFound(404, "NotFound", name) from None
        if patch_type == "json":
            for op in patch:
                path = op["path"].split("/")[1:]
                target: Any = obj
                for p in path[:-1]:
                    target = target[int(p)] if isinstance(target, list) else target[p]
                last = path[-1]
                if op["op"] == "test":
                    have = target[int(last)] if isinstance(target, list) else target.get(last)
                    if have != op["value"]:
                        raise Conflict(409, "Conflict", "test failed")
                elif op["op"] == "add":
                    if last == "-":
                        target.append(op["value"])
                    else:
                        target[last] = op["value"]
                elif op["op"] == "remove":
                    del target[int(last)]
        elif subresource == "status":
            status = obj.setdefault("status", {})
            for k, v in patch["status"].items():
                if v is None:
                    status.pop(k, None)
                else:
                    status[k] = v
        else:
            raise AssertionError(f"unexpected patch {patch_type}: {patch}")
        if not obj["metadata"].get("finalizers") and obj["metadata"].get("deletionTimestamp"):
            del self.objects[(kind.kind, namespace or "", name)]
            return obj
        return self._store(kind, obj, spec_changed=False)

    def apply(self, kind, body, **kw):
        self.on_write()
        self.writes.append(("apply", kind.kind, body))
        body = copy.deepcopy(body)
        body["metadata"].setdefault("uid", f"uid-{next(self.rv)}")
        return self._store(kind, body, spec_changed=False)

    def create(self, kind, body, namespace=None, **kw):
        self.writes.append(("create", kind.kind, body))
        return body

    def get(self, kind, name, namespace=None):
        return self.live(kind, name, namespace or "")


class FakeInformer:
    """What the cache needs of an informer; the test delivers its events."""

    def __init__(self, kind: minop.Kind) -> None:
        self.kind, self.namespace = kind, None
        self.store = Store(INDEXERS)
        self.synced = threading.Event()
        self.synced.set()

    @staticmethod
    def transform(obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def get(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.store.get((ns, name))


class Env:
    """One resource's reconciler over a FakeApi; ``timers`` names the due timers."""

    def __init__(self, plugin: object, resource: minop.Resource | None = None) -> None:
        self.resource = resource or minop.Resource(kind=KIND)
        self.api = FakeApi()
        self.cache = Cache()
        self.informers = {KIND: FakeInformer(KIND)}
        for kind in (*self.resource.children, *self.resource.observes):
            self.informers[kind] = FakeInformer(kind)
        for inf in self.informers.values():
            self.cache.add(inf)  # type: ignore[arg-type]
        self.rt = Runtime(self.api, self.cache, Recorder(self.api), Metrics())  # type: ignore[arg-type]
        pm = PluginManager()
        pm.register(plugin, "p")
        finalizes = pm.implements("minop_finalize", "p")
        self.due: list[str] = []
        self.now = 1000.0
        self.reconciler = Reconciler(
            self.rt,
            pm,
            Binding("p", self.resource, finalizes),
            lambda key: self.due,
            clock=lambda: self.now,
        )

    def key(self, name: str) -> Key:
        return Key(KIND, NS, name)

    def create(self, name: str, spec: dict[str, Any], deliver: bool = True) -> dict[str, Any]:
        body = {
            "apiVersion": KIND.api_version,
            "kind": KIND.kind,
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }
        obj = self.api.put(KIND, body)
        if deliver:
            self.deliver(name)
        return obj

    def edit(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A user's spec edit in the API server (not delivered to the watch yet)."""
        obj = self.api.live(KIND, name)
        obj["spec"] = spec
        return self.api.put(KIND, obj)

    def change(self, name: str, spec: dict[str, Any]) -> None:
        """A user's spec edit, delivered by the watch."""
        self.edit(name, spec)
        self.deliver(name)

    def set_metadata(self, name: str, **fields: Any) -> None:
        """Metadata fields set as the API server would (finalizers, deletionTimestamp),
        delivered by the watch."""
        live = self.api.live(KIND, name)
        live["metadata"].update(fields)
        self.api.objects[(KIND.kind, NS, name)] = live
        self.deliver(name)

    def deliver(self, name: str, obj: dict[str, Any] | None = None) -> None:
        """The watch delivers ``obj`` (default: the object as it is now)."""
        self.informers[KIND].store.upsert(copy.deepcopy(obj or self.api.live(KIND, name)))

    def process(self, name: str, *causes: str) -> Result:
        return self.reconciler.process(self.key(name), set(causes) or {"watch"})

    def retry(self, name: str, *causes: str) -> Result:
        """A pass once every retry is due (the clock jumps past any backoff)."""
        self.now += 3600
        return self.process(name, *causes)

    def status(self, name: str) -> dict[str, Any]:
        return self.api.live(KIND, name).get("status") or {}

    def writes(self, verb: str) -> list[Any]:
        return [body for v, _, body in self.api.writes if v == verb]
