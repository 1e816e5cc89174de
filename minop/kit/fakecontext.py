"""A plugin's hooks called directly, against minop's real client and cache over a FakeApi.

    from minop.kit.testing import FakeContext

    def test_the_configmap_is_applied() -> None:
        [resource] = hooks.minop_resources()
        ctx = FakeContext(resource, {"message": "hi"}, objects=[a_secret])
        status = hooks.minop_create(ctx)
        assert ctx.applied[0]["data"] == {...}          # what the hook applied
        assert status == {...}                          # the status it returned
        assert ctx.events == [("Normal", "Created", "...")]

As controller-runtime's ``client/fake``: not a mock but the real thing over an
in-memory store. ``FakeContext`` is a ``minop.Context``; its client is minop's own
``Kube`` answered by a ``FakeApi``, and its cache is filled by minop's informers with
what that API server's watch would deliver (at once, unless ``FakeRuntime`` is driven
by hand). So a hook sees exactly what it would in the operator: children with owner
references and labels, Secrets kept only as a hash, nothing sent when a child is
unchanged.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from minop.cache import Cache
from minop.context import Context
from minop.events import Recorder
from minop.informer import Handler, Informer
from minop.kit.fakeapi import FakeApi
from minop.manager import watched
from minop.metrics import Metrics
from minop.objects import Obj
from minop.resource import Kind, Resource
from minop.runtime import Runtime


def _ignore(etype: str, obj: Obj, *, echo: bool = False) -> None:
    """No controller listens: a test calls the hooks itself."""


class FakeRuntime:
    """minop's runtime over ``api``: its client, a recorder sending Events at once, and
    a cache of the informers the manager would start for ``resources`` (label filters
    and Secret hashing included). Informers never run: ``deliver`` hands them the
    API server's watch events; with ``instant`` every write and ``put`` is delivered
    before it returns. ``client``: options of the ``Kube`` (``retries``, ``timeout``)."""

    def __init__(
        self,
        api: FakeApi,
        resources: Iterable[Resource],
        *,
        instant: bool = True,
        handler: Handler = _ignore,
        agent: str = "minop-test",
        **client: Any,
    ) -> None:
        self.api = api
        kube = api.kube(agent=agent, **client)
        cache = Cache()
        for kind, how in watched(resources).items():
            informer = how.informer(kube, kind, handler)
            informer.synced.set()  # listed: nothing yet, everything comes by ``deliver``
            cache.add(informer)
        self.runtime = Runtime(kube, cache, Recorder(kube), Metrics())
        self._cursor: dict[Kind, int] = {}
        if instant:
            api.after_write = self._written

    def _written(self, path: str) -> None:
        self.deliver()

    @property
    def cache(self) -> Cache:
        return self.runtime.cache

    def informer(self, kind: Kind) -> Informer:
        return next(i for i in self.cache.informers() if i.kind == kind)

    def pending(self, kind: Kind) -> int:
        """Watch events of ``kind`` not delivered yet."""
        return len(self.api.watch_log.get(kind, ())) - self._cursor.get(kind, 0)

    def deliver(self, kind: Kind | None = None, count: int | None = None) -> int:
        """The watch delivers the next ``count`` events of ``kind`` (default: every
        pending event of every watched kind); returns how many it delivered."""
        done = 0
        for informer in self.cache.informers():
            if kind is not None and informer.kind != kind:
                continue
            while self.pending(informer.kind) and (count is None or done < count):
                at = self._cursor.get(informer.kind, 0)
                etype, obj = self.api.watch_log[informer.kind][at]
                self._cursor[informer.kind] = at + 1
                if etype == "DELETED" or _selected(informer.label_selector, obj):
                    # a copy, as a watch decodes its own JSON
                    informer._apply({"type": etype, "object": json.loads(json.dumps(obj))})
                done += 1
        return done


def _selected(selector: str | None, obj: Obj) -> bool:
    """Whether a watch with ``selector`` (``key=value`` pairs) sees ``obj``."""
    labels = obj["metadata"].get("labels") or {}
    pairs = (term.partition("=") for term in (selector or "").split(",") if term)
    return all(labels.get(k) == v for k, _, v in pairs)


class FakeContext(Context):
    """A ``minop.Context`` on one object of ``resource`` with ``spec``, for calling a
    plugin's hooks directly. ``objects`` (a user's Secrets, pods, ...) exist in the API
    server and the cache beforehand, in ``namespace`` unless they name one.

    Read back what the hook did: ``applied`` (the children it server-side applied, in
    order; a child that already matched is not sent), ``events`` ((type, reason,
    message) of each Event), ``reads`` (names of the objects it read from the API
    server through ``ctx.api``), ``get`` (an object as the API server holds it, data
    included), and its return value, the status. ``put`` is a user's create or edit.
    """

    def __init__(
        self,
        resource: Resource,
        spec: Mapping[str, Any],
        *,
        name: str = "test",
        namespace: str = "ns",
        objects: Iterable[Obj] = (),
        status: Mapping[str, Any] | None = None,
        plugin: str = "test",
        cause: str = "create",
        api: FakeApi | None = None,
    ) -> None:
        related = (r.kind for r in resource.related)
        served = {resource.kind, *resource.children, *resource.observes, *related}
        self.fake = FakeRuntime(api or FakeApi(served), [resource])
        self._namespace = namespace if resource.kind.namespaced else ""
        for obj in objects:
            self.put(obj)
        body: Obj = {
            "apiVersion": resource.kind.api_version,
            "kind": resource.kind.kind,
            "metadata": {"name": name, "namespace": self._namespace},
            "spec": copy.deepcopy(dict(spec)),
        }
        if status is not None:
            body["status"] = copy.deepcopy(dict(status))
        super().__init__(self.fake.runtime, plugin, resource, self.put(body), cause=cause)

    @property
    def server(self) -> FakeApi:
        """The in-memory API server: its ``faults`` make the next writes fail."""
        return self.fake.api

    def put(self, obj: Obj) -> Obj:
        """A user's create or edit of ``obj`` (of any kind the resource involves; its
        ``kind``/``apiVersion`` say which), delivered to the cache; the stored object."""
        kind = self._kind_of(obj)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if kind.namespaced:
            meta.setdefault("namespace", self._namespace)
        else:
            meta.pop("namespace", None)
        stored = self.server.put(kind, obj)
        self.fake.deliver()
        return stored

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        """``kind``/``name`` as the API server holds it now (None if absent); a copy."""
        ns = (namespace or self._namespace) if kind.namespaced else ""
        return self.server.get(kind, ns, name)

    @property
    def applied(self) -> list[Obj]:
        """The bodies of every server-side apply (children), in order; ``clear()`` it to
        see only what a later call sends."""
        return self.server.applied

    @property
    def events(self) -> list[tuple[str, str, str]]:
        return [(e.get("type", ""), e.get("reason", ""), e.get("message", ""))
                for e in self.server.events]  # fmt: skip

    @property
    def reads(self) -> list[str]:
        """Names of the objects read from the API server by name, in order (from
        ``server.reads``: clear that to see only what a later call reads)."""
        return [name for _, _, name in self.server.reads]

    def _kind_of(self, obj: Obj) -> Kind:
        served = self.server.kinds.values()
        for kind in served:
            if (kind.api_version, kind.kind) == (obj.get("apiVersion"), obj.get("kind")):
                return kind
        raise ValueError(
            f"{obj.get('kind')} ({obj.get('apiVersion')}): not a kind the resource involves "
            f"({', '.join(sorted(k.kind for k in served))})"
        )
