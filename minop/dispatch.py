"""Decides what one queued object needs, runs the hooks, and records the result.

Flow for one key (always from the latest cached object, never a stale event):
gone → ``delete``; deleting with our finalizer → ``finalize`` then release;
never handled → add finalizer (if the plugin finalizes) → ``create``; spec
differs from the last handled one → ``update`` (cause ``spec``); a child,
related object or resync queued it → ``update`` with that cause; due timers →
``timer``. The handled spec is recorded only after the hook succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from minop import invoke as inv
from minop import schema, verdict
from minop import status as st
from minop.apierrors import ApiError
from minop.apply import content_hash
from minop.conditions import DEGRADED, find
from minop.context import Context
from minop.diff import diff
from minop.errors import PermanentError
from minop.events import NORMAL, WARNING
from minop.keys import Key
from minop.kube import Obj
from minop.log import fields
from minop.plugin.manager import PluginManager
from minop.queue import Backoff
from minop.resource import Kind, Resource
from minop.runtime import Runtime
from minop.watch import Watcher

log = logging.getLogger("minop.dispatch")

# Causes that call minop_update on an unchanged spec, by precedence.
TRIGGERS = ("child", "related", "resync")


@dataclass(frozen=True)
class Binding:
    """A resource and the plugin that owns it."""

    plugin: str
    resource: Resource
    finalizes: bool


@dataclass(frozen=True)
class Hold:
    """Keep the key busy until ``thread`` ends, then requeue it (a timed-out hook)."""

    thread: threading.Thread
    cause: str
    delay: float | None


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        plugins: PluginManager,
        bindings: Mapping[Any, Binding],
        watch_named: Callable[[Kind, str, str], Watcher],
    ) -> None:
        self.rt, self.plugins, self.bindings = runtime, plugins, bindings
        self.watch_named = watch_named  # starts a by-name watcher for a related object
        self.api_backoff = Backoff(0.005, 1000.0)  # API trouble: never uses up hook tries
        self.hook_backoff = Backoff(1.0, 300.0)  # TemporaryError and hook failures
        self.tombstones: dict[Key, Obj] = {}
        self._tried_spec: dict[Key, str] = {}
        self._timers: set[tuple[Key, str]] = set()
        self._lock = threading.Lock()

    # -- entry point ------------------------------------------------------------------

    def process(self, key: Key, causes: set[str]) -> Hold | None:
        b = self.bindings[key.kind]
        start = time.monotonic()
        controller = b.resource.kind.kind.lower()
        try:
            return self._process(b, key, causes)
        except ApiError as e:  # our own writes (finalizer, status, ...) failed: API regime
            delay = self._api_delay(key, e)
            log.warning(
                "%s: API error, retrying in %.3fs: %s",
                key,
                delay,
                e,
                extra=_extra(key, b.plugin, ""),
            )
            self._count(b, "requeue")
            for cause in causes - {"watch"} or {"retry"}:
                self.rt.queue.add(key, cause, delay)
            return None
        finally:
            self.rt.metrics.reconcile_time.observe(time.monotonic() - start, controller=controller)

    def _process(self, b: Binding, key: Key, causes: set[str]) -> Hold | None:
        obj = self.rt.cache.get(key.kind, key.namespace, key.name)
        if obj is None:
            self._gone(b, key)
            return None
        with self._lock:
            self.tombstones.pop(key, None)
        if obj["metadata"].get("deletionTimestamp"):
            return self._finalize(b, key, obj)
        self._track_related(b, key, obj)
        hold = self._reconcile(b, key, obj, causes)
        if hold is None:
            self._timers_due(b, key, causes)
        return hold

    # -- create / update ------------------------------------------------------------

    def _reconcile(self, b: Binding, key: Key, obj: Obj, causes: set[str]) -> Hold | None:
        spec = st.spec_of(b.resource, obj)
        last = st.last_handled(obj)
        if last is None:
            hook, cause, changes = "minop_create", "create", []
        elif spec != last:
            hook, cause, changes = "minop_update", "spec", diff(last, spec)
        else:
            trigger = next((c for c in TRIGGERS if c in causes), None)
            if trigger is None and _unobserved(obj):
                # the spec was reverted to the last handled one after a refused change,
                # or we crashed between recording the spec and the status
                trigger = "spec"
            if trigger is None:
                return None  # status-only or our own write echoed back
            hook, cause, changes = "minop_update", trigger, []
        if self._given_up(obj) and "related" not in causes:  # a referenced object may fix it
            log.debug("%s: degraded until its spec changes; skipping %s", key, hook)
            return None
        invalid = schema.check(b.resource.crd, obj, b.resource.spec_fields)
        if invalid:  # stored before the CRD was tightened: no hook may act on it
            self._report(
                b, key, obj, hook, inv.Outcome(inv.PERMANENT, [], PermanentError(invalid)), True
            )
            return None
        self._reset_tries_on_new_spec(key, spec)
        if b.finalizes and not st.has_finalizer(obj):
            obj = self._write(key, lambda: st.add_finalizer(self.rt.kube, key.kind, obj))
        ctx = Context(
            self.rt,
            b.plugin,
            b.resource,
            obj,
            cause=cause,
            old=last,
            new=spec,
            diff=changes,
            retry=self.hook_backoff.failures(key),
        )
        out = self._call(b, hook, ctx)
        if out.kind != inv.OK:
            return self._failed(
                b, key, obj, hook, out, ctx, "retry" if cause in ("create", "spec") else cause
            )
        if cause in ("create", "spec"):
            obj = self._write(key, lambda: st.write_last_handled(self.rt.kube, key.kind, obj, spec))
        self._succeeded(b, key, obj, out.results, ctx)
        if cause in ("create", "spec"):
            verb = "Created" if cause == "create" else "Updated"
            ctx.event(NORMAL, verb, f"{hook.removeprefix('minop_')} handled by {b.plugin}")
        return None

    def _given_up(self, obj: Obj) -> bool:
        cond = find(obj.get("status"), DEGRADED)
        if not cond or cond.get("status") != "True" or cond.get("reason") not in verdict.STICKY:
            return False
        return cond.get("observedGeneration") == obj["metadata"].get("generation")

    def _reset_tries_on_new_spec(self, key: Key, spec: Mapping[str, Any]) -> None:
        h = content_hash(spec)
        with self._lock:
            if self._tried_spec.get(key) != h:
                self._tried_spec[key] = h
                self.hook_backoff.reset(key)

    # -- finalize / delete -----------------------------------------------------------

    def _finalize(self, b: Binding, key: Key, obj: Obj) -> Hold | None:
        if not st.has_finalizer(obj):
            return None  # someone else's finalizer holds it; DELETED will follow
        if b.finalizes:
            ctx = Context(
                self.rt,
                b.plugin,
                b.resource,
                obj,
                cause="finalize",
                retry=self.hook_backoff.failures(key),
            )
            out = self._call(b, "minop_finalize", ctx)
            if out.kind != inv.OK:
                return self._failed(b, key, obj, "minop_finalize", out, ctx, "retry")
            ctx.event(NORMAL, "Finalized", f"finalize handled by {b.plugin}")
        self._write(key, lambda: st.remove_finalizer(self.rt.kube, key.kind, obj))
        self._count(b, "success")
        return None

    def _gone(self, b: Binding, key: Key) -> None:
        with self._lock:
            tomb = self.tombstones.pop(key, None)
            self._tried_spec.pop(key, None)
            self._timers = {t for t in self._timers if t[0] != key}
        self.hook_backoff.reset(key)
        self.api_backoff.reset(key)
        self.rt.cache.untrack(key)
        if tomb is None:
            return
        ctx = Context(self.rt, b.plugin, b.resource, tomb, cause="delete")
        out = self._call(b, "minop_delete", ctx)
        if out.kind != inv.OK:  # a notification: reported, never retried
            log.error(
                "%s: delete hook of plugin %s failed: %s",
                key,
                b.plugin,
                out.error,
                extra=_extra(key, b.plugin, "minop_delete"),
            )

    # -- timers ----------------------------------------------------------------------

    def _timers_due(self, b: Binding, key: Key, causes: set[str]) -> None:
        for timer in b.resource.timers:
            cause = f"timer:{timer.name}"
            with self._lock:
                scheduled = (key, timer.name) in self._timers
                self._timers.add((key, timer.name))
            if not scheduled:
                self.rt.queue.add(key, cause, timer.initial_delay or timer.interval)
                continue
            if cause not in causes:
                continue
            obj = self.rt.cache.get(key.kind, key.namespace, key.name)
            if obj is None:
                continue
            ctx = Context(self.rt, b.plugin, b.resource, obj, cause="timer", timer=timer.name)
            out = self._call(b, "minop_timer", ctx)
            if out.kind == inv.OK:
                self._succeeded(b, key, obj, out.results, ctx)
            else:
                self._report(b, key, obj, "minop_timer", out, final=False)
            self.rt.queue.add(key, cause, timer.interval)

    # -- related objects ---------------------------------------------------------------

    def _track_related(self, b: Binding, key: Key, obj: Obj) -> None:
        for rel in b.resource.related:
            try:
                names = [n for n in rel.names(obj) if n]
            except Exception:
                log.exception("%s: related names for %s failed", key, rel.kind.kind)
                continue
            started = self.rt.cache.track(rel.kind, key.namespace, names, key, self.watch_named)
            for w in started:  # hooks should see the hash at once, not one reconcile later
                w.synced.wait(10)

    # -- outcomes ------------------------------------------------------------------------

    def _api_delay(self, key: Key, error: BaseException | None) -> float:
        """The API backoff, but never sooner than the server's Retry-After."""
        asked = getattr(error, "retry_after", None) or 0.0
        return max(self.api_backoff.next(key), asked)

    def _call(self, b: Binding, hook: str, ctx: Context) -> inv.Outcome:
        return inv.invoke(
            self.plugins, b.plugin, hook, ctx, b.resource.hook_timeout, self.rt.metrics
        )

    def _succeeded(self, b: Binding, key: Key, obj: Obj, results: list[Any], ctx: Context) -> None:
        self.hook_backoff.reset(key)
        self.api_backoff.reset(key)
        self._write_status(key, obj, st.new_status(obj, results, verdict.success(ctx.conditions)))
        self._count(b, "success")

    def _failed(
        self, b: Binding, key: Key, obj: Obj, hook: str, out: inv.Outcome, ctx: Context, cause: str
    ) -> Hold | None:
        if out.kind == inv.FENCED:
            log.warning("%s: leadership lost; not retrying", key)
            return None
        if out.kind == inv.API:
            delay = self._api_delay(key, out.error)
            log.warning(
                "%s: API error in %s, retrying in %.3fs: %s",
                key,
                hook,
                delay,
                out.error,
                extra=_extra(key, b.plugin, hook),
            )
            self._count(b, "requeue")
            self.rt.queue.add(key, cause, delay)
            return None
        retry_in = self._report(b, key, obj, hook, out, final=True)
        if out.kind == inv.TIMEOUT and out.thread is not None:
            return Hold(out.thread, cause, retry_in)
        if retry_in is not None:
            self.rt.queue.add(key, cause, retry_in)
        return None

    def _report(
        self, b: Binding, key: Key, obj: Obj, hook: str, out: inv.Outcome, final: bool
    ) -> float | None:
        """Status, event, log and metrics for a failed hook; returns the retry delay."""
        tries = self.hook_backoff.failures(key) + 1
        v = verdict.failure(
            out, tries, b.resource.max_tries, final, lambda: self.hook_backoff.next(key)
        )
        reason, message, delay = v.reason, v.message, v.delay
        extra = _extra(key, b.plugin, hook)
        if out.kind in (inv.TEMPORARY, inv.PERMANENT):
            log.warning(
                "%s: %s of plugin %s: %s: %s", key, hook, b.plugin, reason, message, extra=extra
            )
        else:
            log.error(
                "%s: %s of plugin %s failed (%s): %s",
                key,
                hook,
                b.plugin,
                reason,
                message,
                exc_info=out.error if out.kind == inv.ERROR else None,
                extra=extra,
            )
        self.rt.recorder.event(obj, WARNING, reason, f"{hook.removeprefix('minop_')}: {message}")
        self._write_status(key, obj, st.new_status(obj, [], v.conditions))
        self._count(b, "requeue_after" if out.kind == inv.TEMPORARY and delay else "error")
        if out.kind != inv.TEMPORARY or delay is None:
            self.rt.metrics.reconcile_errors.inc(controller=b.resource.kind.kind.lower())
        return delay

    # -- writes --------------------------------------------------------------------------

    def _write(self, key: Key, fn: Any) -> Obj:
        obj: Obj = fn()
        self.rt.cache.remember(key.kind, obj, only_if_present=True)
        return obj

    def _write_status(self, key: Key, obj: Obj, status: dict[str, Any]) -> None:
        written = st.write_status(self.rt.kube, key.kind, obj, status)
        if written is not None:
            self.rt.cache.remember(key.kind, written, only_if_present=True)

    def _count(self, b: Binding, result: str) -> None:
        self.rt.metrics.reconcile_total.inc(controller=b.resource.kind.kind.lower(), result=result)


def _unobserved(obj: Obj) -> bool:
    """The object's current generation has not been reconciled successfully."""
    generation = obj["metadata"].get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is not None and observed != generation


def _extra(key: Key, plugin: str, hook: str) -> dict[str, str]:
    return fields(
        kind=key.kind.kind, namespace=key.namespace, name=key.name, plugin=plugin, hook=hook
    )
