"""What one custom resource needs, decided from the object alone; runs the hooks.

A worker hands over a key; the reconciler reads the latest object from the cache
(the watch's view, or our own newer write) and decides, never from comparing a
watch event with anything:

- gone, or recreated under the same name (another uid) → ``delete`` for the old one;
- ``deletionTimestamp`` with our finalizer → ``finalize``, then release it;
- no last-handled spec → add our finalizer (if the plugin finalizes) → ``create``;
- spec ≠ last handled, or ``generation`` ≠ ``observedGeneration`` → ``update``
  (cause ``spec``);
- a child, related object or resync queued it → ``update`` with that cause;
- then due timers → ``timer``, outside all of the above.

Hooks get a deep copy. The status write after a hook carries the hook body's
generation as ``observedGeneration`` and, for create/spec, the handled spec: one
request. What an outcome means (conditions, finite retries) is ``verdict``'s; what a
failure shows and when its hook runs again, ``failures``'.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minop import invoke as inv
from minop import schema, verdict
from minop import status as st
from minop.apierrors import ApiError, NotFound, WritesFenced
from minop.conditions import DEGRADED, find
from minop.context import Context
from minop.diff import diff
from minop.events import NORMAL
from minop.failures import FENCED_RETRY, Failures, log_fields
from minop.keys import Key
from minop.kube import Obj
from minop.plugin.manager import PluginManager
from minop.resource import Kind, Resource
from minop.runtime import Runtime

log = logging.getLogger("minop.reconcile")

# Causes that call minop_update on an unchanged spec, by precedence.
TRIGGERS = ("child", "related", "resync")


@dataclass(frozen=True)
class Binding:
    """A resource and the plugin that owns it."""

    plugin: str
    resource: Resource
    finalizes: bool


@dataclass(frozen=True)
class Result:
    """What the controller does with the key after a pass."""

    requeue_after: float | None = None  # None: nothing more until the next event
    cause: str = "retry"
    hold: inv.Call | None = None  # a timed-out hook: keep the key busy until it ends


DONE = Result()


class Reconciler:
    def __init__(
        self,
        runtime: Runtime,
        plugins: PluginManager,
        binding: Binding,
        timers: Callable[[Key], list[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rt, self.plugins, self.b = runtime, plugins, binding
        self.due_timers = timers  # names of this key's timers due now (and re-armed)
        self.controller = binding.resource.kind.kind.lower()
        self.failures = Failures(
            runtime, binding.plugin, binding.resource, self._write_status, clock
        )
        self.tombstones: dict[Key, Obj] = {}  # last body of a deleted (or replaced) object
        self._released: set[tuple[Key, str]] = set()  # (key, uid) whose finalizer we removed
        self._lock = threading.Lock()

    def deleted(self, key: Key, last: Obj) -> None:
        """The informer saw ``last`` go (or be replaced by another uid): its delete hook
        runs on the next pass."""
        with self._lock:
            self.tombstones[key] = last

    # -- entry point --------------------------------------------------------------------

    def process(self, key: Key, causes: set[str]) -> Result:
        start = time.monotonic()
        try:
            return self._process(key, causes)
        except WritesFenced:
            log.warning("%s: writes fenced (leadership in doubt); requeued", key)
            return Result(FENCED_RETRY, _retry_cause(causes))
        except ApiError as e:  # our own writes (finalizer, status, ...) failed: API regime
            delay = self.failures.api_delay(key, e)
            log.warning("%s: API error, retrying in %.3fs: %s", key, delay, e, extra=self._x(key))
            self._count("requeue")
            return Result(delay, _retry_cause(causes))
        finally:
            self.rt.metrics.reconcile_time.observe(
                time.monotonic() - start, controller=self.controller
            )

    def _process(self, key: Key, causes: set[str]) -> Result:
        cached = self.rt.cache.get(key.kind, key.namespace, key.name)
        with self._lock:
            tomb = self.tombstones.get(key)
            if tomb is not None and (cached is None or _uid(tomb) != _uid(cached)):
                del self.tombstones[key]
            else:
                tomb = None
        if tomb is not None:
            self._notify_deleted(key, tomb)
        if cached is None:
            self._forget(key)
            return DONE
        obj = cached  # read only: hooks get copies (see _context)
        if obj["metadata"].get("deletionTimestamp"):
            return self._finalize(key, obj)
        self._track_related(key, obj)
        result = self._reconcile(key, obj, causes)
        if result.hold is not None:
            return result
        latest = self.rt.cache.get(key.kind, key.namespace, key.name)  # with our own writes
        if latest is None or st.last_handled(latest) is None:
            return result
        return self._timers(key, latest) or result

    # -- create / update ---------------------------------------------------------------

    def _reconcile(self, key: Key, obj: Obj, causes: set[str]) -> Result:
        spec = st.spec_of(self.b.resource, obj)
        last = st.last_handled(obj)
        if last is None:
            hook, cause, changes = "minop_create", "create", []
        elif spec != last or _unobserved(obj):
            # unobserved with an equal spec: reverted to the last handled one
            hook, cause, changes = "minop_update", "spec", diff(last, spec)
        else:
            trigger = next((c for c in TRIGGERS if c in causes), None)
            if trigger is None:
                return DONE  # status-only, our own write echoed back, or a timer
            hook, cause, changes = "minop_update", trigger, []
        if self._given_up(obj) and "related" not in causes:  # a referenced object may fix it
            log.debug("%s: degraded until its spec changes; skipping %s", key, hook)
            return DONE
        invalid = schema.check(self.b.resource.crd, obj, self.b.resource.spec_fields)
        if invalid:  # stored before the CRD was tightened: no hook may act on it
            self.failures.rejected(key, obj, hook, invalid)
            return DONE
        self.failures.new_spec(key, spec)
        wait = self.failures.due_in(key, causes)
        if wait:
            return Result(wait, _retry_cause(causes))
        if self.b.finalizes and not st.has_finalizer(obj):
            # its own pass: the next one reads the response (our overlay) and goes on
            self._mutated(st.add_finalizer(self.rt.kube, key.kind, obj))
            return Result(0.0, _retry_cause(causes) if cause != "create" else "create")
        ctx = self._context(obj, cause, old=last, new=copy.deepcopy(spec), diff=changes)
        out = self._call(hook, ctx)
        if out.kind != inv.OK:
            return self._failed(key, obj, hook, out, cause)
        handled = spec if cause in ("create", "spec") else None
        self._succeeded(key, obj, out.results, ctx, handled)
        return DONE

    def _given_up(self, obj: Obj) -> bool:
        cond = find(obj.get("status"), DEGRADED)
        if not cond or cond.get("status") != "True" or cond.get("reason") not in verdict.STICKY:
            return False
        return cond.get("observedGeneration") == obj["metadata"].get("generation")

    # -- finalize / delete -------------------------------------------------------------

    def _finalize(self, key: Key, obj: Obj) -> Result:
        with self._lock:
            released = (key, _uid(obj)) in self._released
        if released or not st.has_finalizer(obj):
            # someone else's finalizer holds it, or the watch has not yet shown our removal
            # (its response may carry the version the watch holds): DELETED will follow
            return DONE
        if self.b.finalizes:
            wait = self.failures.due_in(key, set())
            if wait:
                return Result(wait, "finalize")
            ctx = self._context(obj, "finalize")
            out = self._call("minop_finalize", ctx)
            if out.kind != inv.OK:
                # finalizers are retried for as long as it takes (the object cannot go
                # otherwise); past max_tries it shows Degraded with a Warning each time
                return self._failed(key, obj, "minop_finalize", out, "finalize")
            ctx.event(NORMAL, "Finalized", f"finalize handled by {self.b.plugin}")
        with contextlib.suppress(NotFound):  # gone already: what we wanted
            self._mutated(st.remove_finalizer(self.rt.kube, key.kind, obj), only_if_present=True)
        with self._lock:
            self._released.add((key, _uid(obj)))
        self._count("success")
        return DONE

    def _notify_deleted(self, key: Key, tomb: Obj) -> None:
        ctx = self._context(tomb, "delete")
        out = self._call("minop_delete", ctx)
        if out.kind != inv.OK:  # a notification: reported, never retried
            log.error(
                "%s: delete hook of plugin %s failed: %s",
                key,
                self.b.plugin,
                out.error,
                extra=self._x(key, "minop_delete"),
            )

    def _forget(self, key: Key) -> None:
        with self._lock:
            self._released = {r for r in self._released if r[0] != key}
        self.failures.forget(key)
        self.rt.cache.forget(key)

    # -- timers ---------------------------------------------------------------------------

    def _timers(self, key: Key, obj: Obj) -> Result | None:
        """Due timers: their outcome touches neither update retries nor the default
        conditions (a timer's own results and conditions are merged, nothing else)."""
        for name in self.due_timers(key):
            ctx = self._context(obj, "timer", timer=name)
            out = self._call("minop_timer", ctx)
            if out.kind == inv.OK:
                status = st.new_status(obj, out.results, ctx.conditions, observe=False)
                self._write_status(obj, status)
                continue
            if out.kind == inv.FENCED:
                return Result(FENCED_RETRY, "retry")
            self.failures.timer_failed(key, obj, name, out)
            if out.kind == inv.TIMEOUT:
                return Result(None, hold=out.running)
        return None

    # -- related objects ---------------------------------------------------------------

    def _track_related(self, key: Key, obj: Obj) -> None:
        names: dict[Kind, list[str]] = {}  # several Related may name one kind
        for rel in self.b.resource.related:
            try:
                names.setdefault(rel.kind, []).extend(n for n in rel.names(obj) if n)
            except Exception:
                log.exception("%s: related names for %s failed", key, rel.kind.kind)
                return  # keep what it referred to: dropping it would miss its changes
        for kind, found in names.items():
            self.rt.cache.refer(key, kind, key.namespace, found)

    # -- outcomes ----------------------------------------------------------------------

    def _context(self, obj: Obj, cause: str, **kw: Any) -> Context:
        """A hook's context on a deep copy: a hook can never change what is cached."""
        key = Key.of(self.b.resource.kind, obj)
        retry = 0 if cause in ("delete", "timer") else self.failures.tries(key)
        body = copy.deepcopy(obj)
        return Context(
            self.rt, self.b.plugin, self.b.resource, body, cause=cause, retry=retry, **kw
        )

    def _call(self, hook: str, ctx: Context) -> inv.Outcome:
        r = self.b.resource
        return inv.invoke(self.plugins, self.b.plugin, hook, ctx, r.hook_timeout, self.rt.metrics)

    def _succeeded(
        self, key: Key, obj: Obj, results: list[Any], ctx: Context, handled: dict | None
    ) -> None:
        self.failures.succeeded(key)
        conditions = verdict.success(ctx.conditions)
        self._write_status(obj, st.new_status(obj, results, conditions, handled=handled))
        self._count("success")

    def _failed(self, key: Key, obj: Obj, hook: str, out: inv.Outcome, cause: str) -> Result:
        delay, hold = self.failures.failed(key, obj, hook, out)
        return Result(delay, "retry" if cause in ("create", "spec") else cause, hold=hold)

    # -- writes ----------------------------------------------------------------------------

    def _mutated(self, obj: Obj, *, only_if_present: bool = False) -> None:
        self.rt.cache.mutated(self.b.resource.kind, obj, only_if_present=only_if_present)

    def _write_status(self, obj: Obj, status: dict[str, Any]) -> None:
        written = st.write_status(self.rt.kube, self.b.resource.kind, obj, status)
        if written is not None:
            self._mutated(written, only_if_present=True)

    def _count(self, result: str) -> None:
        self.rt.metrics.reconcile_total.inc(controller=self.controller, result=result)

    def _x(self, key: Key, hook: str = "") -> dict[str, str]:
        return log_fields(key, self.b.plugin, hook)


def _unobserved(obj: Obj) -> bool:
    """The object's current generation has not been handled."""
    generation = obj["metadata"].get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is not None and observed != generation


def _uid(obj: Obj) -> str:
    return str(obj["metadata"].get("uid", ""))


def _retry_cause(causes: set[str]) -> str:
    return next((c for c in ("create", "spec", *TRIGGERS) if c in causes), "retry")
