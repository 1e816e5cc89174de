"""A plugin's resource reconciled pass by pass over a FakeApi, with the watch and the
clock in the test's hands.

    rec = FakeReconciler(my_plugin)
    rec.create("x", {"size": 1})            # a user's create, delivered by the watch
    rec.process("x")                        # one reconcile pass: finalizer, hook, status
    assert rec.status("x")["conditions"]...
    rec.edit("x", {"size": 2})              # a user's edit the watch has not delivered
    rec.api.before_write = ...              # something that lands while minop writes

Each ``process`` is the operator's own pass (the reconciler that decides which hook
runs, writes the status and conditions, records Events, schedules the retry) on the
test's thread. Nothing happens between calls: the watch delivers only on ``deliver``
(or ``create``/``change``), the clock moves only on ``retry`` (or ``now``), timers are
due only when ``due`` names them. So a test can force any interleaving of a user's
change, the watch and minop's own writes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from minop.cache import Cache
from minop.hookrun import Binding, Result
from minop.kit.fakeapi import FakeApi
from minop.kit.fakecontext import FakeRuntime
from minop.objects import Key, Obj
from minop.plugin.manager import PluginManager
from minop.reconcile import Reconciler
from minop.resource import Resource
from minop.runtime import Runtime

_VERBS: dict[str, Callable[[str, str, str], bool]] = {
    "apply": lambda m, path, ct: ct.startswith("application/apply-patch"),
    "patch/status": lambda m, path, ct: m == "PATCH" and path.endswith("/status"),
    "patch/json": lambda m, path, ct: ct.startswith("application/json-patch"),
    "patch/merge": lambda m, path, ct: (
        ct.startswith("application/merge-patch") and not path.endswith("/status")
    ),
    "delete": lambda m, path, ct: m == "DELETE",
}


class FakeReconciler:
    """``plugin`` (registered as ``name``) reconciling ``resource`` (default: the one it
    declares) in ``namespace``; ``client`` are options of its ``Kube`` (``retries``,
    ``timeout``)."""

    def __init__(
        self,
        plugin: object,
        resource: Resource | None = None,
        *,
        name: str = "p",
        namespace: str = "ns",
        api: FakeApi | None = None,
        **client: Any,
    ) -> None:
        self.plugins = PluginManager()
        self.plugins.register(plugin, name)
        if resource is None:
            [(_, resource)] = self.plugins.resources()
        self.resource, self.namespace = resource, namespace if resource.kind.namespaced else ""
        related = (r.kind for r in resource.related)
        self.api = api or FakeApi({resource.kind, *resource.children, *resource.observes, *related})
        self.fake = FakeRuntime(self.api, [resource], instant=False, **client)
        finalizes = self.plugins.implements("minop_finalize", name)
        self.binding = Binding(name, resource, finalizes)
        self.due: list[str] = []  # the timers due in the next passes
        self.now = 1000.0  # the reconciler's clock (backoff, timers)
        self.reconciler = Reconciler(
            self.rt, self.plugins, self.binding, lambda key: self.due, clock=lambda: self.now
        )

    @property
    def rt(self) -> Runtime:
        return self.fake.runtime

    @property
    def cache(self) -> Cache:
        return self.fake.cache

    def key(self, name: str) -> Key:
        return Key(self.resource.kind, self.namespace, name)

    # -- a user's side ----------------------------------------------------------------------

    def create(self, name: str, spec: dict[str, Any], deliver: bool = True) -> Obj:
        """A user's create (delivered by the watch unless ``deliver`` is False)."""
        kind = self.resource.kind
        meta = {"name": name, "namespace": self.namespace}
        body = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta, "spec": spec}
        obj = self.api.put(kind, body)
        if deliver:
            self.deliver(name)
        return obj

    def edit(self, name: str, spec: dict[str, Any]) -> Obj:
        """A user's spec edit in the API server, not delivered yet."""
        obj = self.live(name)
        obj["spec"] = spec
        return self.api.put(self.resource.kind, obj)

    def change(self, name: str, spec: dict[str, Any]) -> None:
        """A user's spec edit, delivered by the watch."""
        self.edit(name, spec)
        self.deliver(name)

    def set_metadata(self, name: str, **fields: Any) -> None:
        """Metadata set as the API server or another controller would (finalizers,
        deletionTimestamp), delivered by the watch."""
        self.api.update(
            self.resource.kind, self.namespace, name, lambda o: o["metadata"].update(fields)
        )
        self.deliver(name)

    def remove(self, name: str, deliver: bool = True) -> None:
        """A user's delete (finalizers hold it), delivered by the watch unless not."""
        self.api.remove(self.resource.kind, self.namespace, name)
        if deliver:
            self.deliver(name)

    # -- the watch and the passes -------------------------------------------------------------

    def deliver(self, name: str, obj: Obj | None = None) -> None:
        """The watch delivers ``obj`` (default: the object as it is now, or its deletion
        when it is gone), skipping what came between."""
        kind = self.resource.kind
        obj = obj or self.api.get(kind, self.namespace, name)
        etype = "MODIFIED"
        if obj is None:  # its last event is its deletion, at the deletion's version
            etype, obj = next(
                (t, o) for t, o in reversed(self.api.watch_log[kind])
                if o["metadata"]["name"] == name
            )  # fmt: skip
        self.fake.informer(kind)._apply({"type": etype, "object": copy.deepcopy(obj)})

    def process(self, name: str, *causes: str) -> Result:
        """One pass over ``name`` for ``causes`` (default: a watch event)."""
        return self.reconciler.process(self.key(name), set(causes) or {"watch"})

    def retry(self, name: str, *causes: str) -> Result:
        """A pass once every retry is due (the clock jumps past any backoff)."""
        self.now += 3600
        return self.process(name, *causes)

    # -- what a user sees ---------------------------------------------------------------------

    def live(self, name: str) -> Obj:
        """The object in the API server (it must exist)."""
        obj = self.api.get(self.resource.kind, self.namespace, name)
        assert obj is not None, f"{name}: not in the API server"
        return obj

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.live(name).get("status") or {})

    def writes(self, verb: str) -> list[Any]:
        """The bodies minop sent: ``apply``, ``patch/status``, ``patch/json``,
        ``patch/merge``, ``delete`` or ``event`` (the Events it created)."""
        if verb == "event":
            return [s.body for s in self.api.sent if s.method == "POST" and "/events" in s.path]
        wanted = _VERBS[verb]
        return [s.body for s in self.api.sent if wanted(s.method, s.path, s.content_type)]
