"""Test plugins the chaos scenarios load through entry points (chaosops.PLUGINS).

``MEMCACHED`` and ``REDIS`` are the real plugins' hooks with one addition: every
``minop_create`` call is recorded in MINOP_CHAOS_CREATES, with whether the object's
handled spec was already recorded (``status.lastHandledSpec``) when the hook was called
(read from the API server, not from the operator's cache). That is what an external
system would see as a second "create" for the same object; ``DOUBLE`` creates twice on
purpose, to show the detector fires. ``LOOSE`` and ``NOCACHE`` reconcile copies of the Memcached
kind in test groups of their own (a CRD loosened then tightened; a kind served without
the watch cache). ``Raiser`` raises in every hook and
``Hanger`` does not return from one, to show they are isolated (both in-process).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from types import ModuleType
from typing import Any

from minop_memcached import hooks as memcached_hooks
from minop_redis import hooks as redis_hooks

import minop
from minop import Kind
from minop.kit import crd

LAST_HANDLED = "lastHandledSpec"  # the core's record of the handled spec, in the status


def _record(ctx: minop.Context, verdict: str) -> None:
    path = os.environ.get("MINOP_CHAOS_CREATES")
    if not path:
        return
    line = f"{ctx.meta['uid']} {verdict} {os.getpid()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write: lines of concurrent workers never mix
        os.fsync(fd)  # on disk before the hook goes on: a SIGKILL cannot lose it
    finally:
        os.close(fd)


class Counting:
    """The hooks of ``module``, with every ``minop_create`` recorded."""

    def __init__(self, module: ModuleType, kind: Kind) -> None:
        self.module, self.kind = module, kind
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return list(self.module.minop_resources())

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> Any:
        live = ctx.api.get(self.kind, ctx.name, ctx.namespace)
        recorded = bool((live.get("status") or {}).get(LAST_HANDLED))
        with self._lock:
            again = ctx.meta["uid"] in self._seen
            self._seen.add(ctx.meta["uid"])
        _record(ctx, "double" if recorded else "again" if again else "first")
        return self.module.minop_create(ctx)

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> Any:
        return self.module.minop_update(ctx)


def _redis_kind() -> Kind:
    return next(iter(redis_hooks.minop_resources())).kind


MEMCACHED = Counting(memcached_hooks, memcached_hooks.KIND)
REDIS = Counting(redis_hooks, _redis_kind())


def memcached_copy(group: str) -> tuple[Kind, dict[str, Any]]:
    """The Memcached kind and CRD moved to ``group``: a test can change its CRD or serve
    it differently without touching the one every other test uses."""
    kind = Kind(group, "v1alpha1", "Memcached", "memcacheds")
    crd: dict[str, Any] = dict(memcached_hooks.DEFINITION)
    crd = {**crd, "metadata": {"name": f"{kind.plural}.{group}"}}
    crd["spec"] = {**crd["spec"], "group": group}
    return kind, crd


class MemcachedCopy:
    """The Memcached plugin on ``memcached_copy(group)``; records creates and deletes."""

    def __init__(self, group: str) -> None:
        self.kind, self.crd = memcached_copy(group)

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        (real,) = memcached_hooks.minop_resources()
        return [dataclasses.replace(real, kind=self.kind, crd=self.crd, examples=())]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> Any:
        _record(ctx, "create")
        return memcached_hooks.reconcile(ctx)

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> Any:
        return memcached_hooks.reconcile(ctx)

    @minop.hookimpl
    def minop_delete(self, ctx: minop.Context) -> None:
        _record(ctx, "deleted")


class FinalizingCopy(MemcachedCopy):
    """A Memcached copy with a finalizer: releasing "external state" is recorded."""

    @minop.hookimpl
    def minop_finalize(self, ctx: minop.Context) -> None:
        _record(ctx, "finalized")


LOOSE = MemcachedCopy("loose.chaos.minop.dev")  # its CRD is loosened, then tightened
# Served without the API server's watch cache (hack/local-cluster.sh): a resumed watch
# meets etcd compaction directly.
NOCACHE = MemcachedCopy("nocache.chaos.minop.dev")
FINALIZING = FinalizingCopy("finalizing.chaos.minop.dev")


class DoubleCreating(MemcachedCopy):
    """A double create on purpose: the first update of each object calls the counting
    ``minop_create`` again, after the core recorded the handled spec (as a runtime that
    lost that record would)."""

    def __init__(self, group: str) -> None:
        super().__init__(group)
        self.counting = Counting(memcached_hooks, self.kind)
        self._doubled: set[str] = set()

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> Any:
        return self.counting.minop_create(ctx)

    @minop.hookimpl
    def minop_update(self, ctx: minop.Context) -> Any:
        if ctx.meta["uid"] not in self._doubled:
            self._doubled.add(ctx.meta["uid"])
            return self.counting.minop_create(ctx)
        return memcached_hooks.reconcile(ctx)


DOUBLE = DoubleCreating("double.chaos.minop.dev")


RAISER_KIND = Kind("chaos.minop.dev", "v1", "Raiser", "raisers")
HANGER_KIND = Kind("chaos.minop.dev", "v1", "Hanger", "hangers")
# Set at the end of a test, so the hung hook threads finish and the runner can stop.
RELEASE = threading.Event()


def test_definition(kind: Kind) -> dict[str, Any]:
    return crd.definition(
        kind,
        description=f"Chaos test kind {kind.kind}.",
        spec=crd.obj("Desired state.", {"size": crd.integer("A number.", minimum=0)}),
        status=crd.obj("Observed state.", {"conditions": crd.conditions()}),
    )


class Raiser:
    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        return [minop.Resource(kind=RAISER_KIND, crd=test_definition(RAISER_KIND), max_tries=3)]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        raise RuntimeError(f"chaos: {ctx.name} always fails")

    minop_update = minop_create


class Hanger:
    """Never returns from a hook until RELEASE: the hook timeout must fire."""

    @minop.hookimpl
    def minop_resources(self) -> list[minop.Resource]:
        kind = HANGER_KIND
        return [minop.Resource(kind=kind, crd=test_definition(kind), hook_timeout=2, max_tries=2)]

    @minop.hookimpl
    def minop_create(self, ctx: minop.Context) -> None:
        RELEASE.wait()

    minop_update = minop_create
