"""What one custom resource needs, decided from the object alone; runs the hooks.

A worker hands over a key; the reconciler reads the latest object from the cache
(the watch's view, or our own newer write) and decides, never from comparing a
watch event with anything:

- gone, or recreated under the same name (another uid) → ``delete`` for the old one;
- ``deletionTimestamp`` with our finalizer → ``finalize``, then release it;
- no last-handled spec → add our finalizer (if the plugin finalizes; then decided
  again from its answer, in the same pass) → ``create``;
- spec ≠ last handled, or ``generation`` ≠ ``observedGeneration`` → ``update``
  (cause ``spec``);
- a child, related object or resync queued it → ``update`` with that cause;
- then due timers → ``timer``, outside all of the above.

Hooks get copies of the JSON trees (body, old, new, diff). The status write after a hook carries
the hook body's generation as ``observedGeneration`` and, for create/spec, the handled
spec: one request; a status that is no JSON object or that the API server refuses is
the hook's failure, never API trouble. What an outcome means (conditions, finite
retries) is ``verdict``'s; when a failed pass runs again, ``retries``'; what it
tells besides the status (log, Event, metrics), ``report``'s. The hook's run and every
status write are ``hookrun``'s.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from minop import schema, verdict
from minop import status as st
from minop.apierrors import ApiError, NotFound, WritesFenced
from minop.conditions import DEGRADED, find
from minop.diff import diff
from minop.errors import PermanentError
from minop.events import NORMAL
from minop.hookrun import DONE, TRIGGERS, Binding, HookRunner, Result, retry_causes
from minop.objects import Key, Obj, uid_of
from minop.outcome import FENCED, OK, PERMANENT, TIMEOUT
from minop.plugin.manager import PluginManager
from minop.report import Report
from minop.resource import Kind
from minop.retries import FENCED_RETRY, Retries
from minop.runtime import Runtime

log = logging.getLogger("minop.reconcile")


class Reconciler:
    def __init__(
        self,
        runtime: Runtime,
        plugins: PluginManager,
        binding: Binding,
        timers: Callable[[Key], list[str]],
        *,
        progress: Callable[[float], None] = lambda seconds: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rt, self.b = runtime, binding
        self.due_timers = timers  # names of this key's timers due now (and re-armed)
        self.controller = binding.resource.kind.kind.lower()
        self.retries = Retries(clock)
        self.report = Report(runtime.recorder, runtime.metrics, binding.plugin, self.controller)
        self.hooks = HookRunner(runtime, plugins, binding, self.retries, self.report, progress)
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
            self.report.fenced(key)
            return Result(FENCED_RETRY, retry_causes(causes))
        except ApiError as e:  # our own writes (finalizer, status, ...) failed: API regime
            delay = self.retries.api_delay(key, e)
            self.report.api_trouble(key, delay, e)
            return Result(delay, retry_causes(causes))
        finally:
            self.rt.metrics.reconcile_time.observe(
                time.monotonic() - start, controller=self.controller
            )

    def _process(self, key: Key, causes: set[str]) -> Result:
        cached = self.rt.cache.get(key.kind, key.namespace, key.name)
        with self._lock:
            tomb = self.tombstones.get(key)
            if tomb is not None and (cached is None or uid_of(tomb) != uid_of(cached)):
                del self.tombstones[key]
            else:
                tomb = None
        if tomb is not None:
            self._notify_deleted(key, tomb)
        if cached is None:
            self._forget(key)
            return DONE
        self.retries.identify(key, uid_of(cached))
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
        return self._timers(key, latest, result)

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
            error = PermanentError(invalid)
            v = verdict.failure(PERMANENT, error, 1, 1, 0.0)
            self.hooks.report_failure(key, obj, hook, PERMANENT, error, v)
            return DONE
        self.retries.new_spec(key, spec)
        wait = self.retries.due_in(key, causes)
        if wait:
            return Result(wait, retry_causes(causes))
        if self.b.finalizes and not st.has_finalizer(obj):
            self.hooks.request()
            self.hooks.mutated(st.add_finalizer(self.rt.kube, key.kind, obj))
            # decided again at once from the response (our overlay): a requeue would be
            # a pass with no new event. Anything else the cache shows came with the
            # watch's own event, which queued the key already.
            latest = self.rt.cache.get(key.kind, key.namespace, key.name)
            if (
                latest is None
                or uid_of(latest) != uid_of(obj)
                or latest["metadata"].get("deletionTimestamp")
                or not st.has_finalizer(latest)
            ):
                return DONE
            return self._reconcile(key, latest, causes)
        ctx = self.hooks.context(obj, cause, old=last, new=spec, diff=changes)
        out = self.hooks.call(hook, ctx)
        if out.kind == OK:
            handled = spec if cause in ("create", "spec") else None
            conditions = verdict.success(ctx.conditions)
            out = self.hooks.write_results(obj, out.results, conditions, handled=handled)
        if out.kind != OK:
            return self.hooks.failed(key, obj, hook, out, causes)
        self.retries.succeeded(key)  # only now: the status write was API work too
        self.report.count("success")
        return DONE

    def _given_up(self, obj: Obj) -> bool:
        cond = find(obj.get("status"), DEGRADED)
        if not cond or cond.get("status") != "True" or cond.get("reason") not in verdict.STICKY:
            return False
        return bool(cond.get("observedGeneration") == obj["metadata"].get("generation"))

    # -- finalize / delete -------------------------------------------------------------

    def _finalize(self, key: Key, obj: Obj) -> Result:
        with self._lock:
            released = (key, uid_of(obj)) in self._released
        if released or not st.has_finalizer(obj):
            # someone else's finalizer holds it, or the watch has not yet shown our removal
            # (its response may carry the version the watch holds): DELETED will follow
            return DONE
        if self.b.finalizes:
            wait = self.retries.due_in(key, set())
            if wait:
                return Result(wait)
            ctx = self.hooks.context(obj, "finalize")
            out = self.hooks.call("minop_finalize", ctx)
            if out.kind != OK:
                # finalizers are retried for as long as it takes (the object cannot go
                # otherwise); past max_tries it shows Degraded with a Warning each time
                return self.hooks.failed(key, obj, "minop_finalize", out, set())
            ctx.event(NORMAL, "Finalized", f"finalize handled by {self.b.plugin}")
        self.hooks.request()
        with contextlib.suppress(NotFound):  # gone already: what we wanted
            self.hooks.mutated(
                st.remove_finalizer(self.rt.kube, key.kind, obj), only_if_present=True
            )
        with self._lock:
            self._released.add((key, uid_of(obj)))
        self.report.count("success")
        return DONE

    def _notify_deleted(self, key: Key, tomb: Obj) -> None:
        ctx = self.hooks.context(tomb, "delete")
        out = self.hooks.call("minop_delete", ctx)
        if out.kind != OK:  # a notification: reported, never retried
            self.report.delete_failed(key, out.error)

    def _forget(self, key: Key) -> None:
        with self._lock:
            self._released = {r for r in self._released if r[0] != key}
        self.retries.forget(key)
        self.rt.cache.forget(key)

    # -- timers ---------------------------------------------------------------------------

    def _timers(self, key: Key, obj: Obj, pending: Result) -> Result:
        """Due timers: their outcome touches neither update retries nor the default
        conditions (a timer's own results and conditions are merged, nothing else), and
        never replaces ``pending``, the pass's own retry."""
        names = self.due_timers(key)
        for i, name in enumerate(names):
            ctx = self.hooks.context(obj, "timer", timer=name)
            out = self.hooks.call("minop_timer", ctx)
            if out.kind == OK:
                out = self.hooks.write_results(obj, out.results, ctx.conditions, observe=False)
            if out.kind == OK:
                continue
            if out.kind == FENCED:
                return _also(pending, Result(FENCED_RETRY, unrun=tuple(names[i:])))
            self.report.timer_failed(key, obj, name, out.kind, out.error)
            if out.kind == TIMEOUT:
                return _also(pending, Result(hold=out.running, unrun=tuple(names[i + 1 :])))
        return pending

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


def _unobserved(obj: Obj) -> bool:
    """The object's current generation has not been handled."""
    generation = obj["metadata"].get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is not None and observed != generation


def _also(pending: Result, timers: Result) -> Result:
    """A pass's own outcome with its timers': the sooner requeue, the pending causes."""
    delays = [d for d in (pending.requeue_after, timers.requeue_after) if d is not None]
    causes = pending.causes if pending.requeue_after is not None else timers.causes
    return Result(min(delays, default=None), causes, timers.hold, timers.unrun)
