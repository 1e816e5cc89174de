"""A hook that failed: when it runs again, and what the user sees of it.

``verdict`` decides what an outcome means; this module carries it out for one
resource: the conditions in the status, the Warning Event, the log line, the metrics
and the retry's schedule. Two backoffs, never mixed: trouble with the API server (a
hook's API errors, or our own writes) backs off from 5 ms and never uses up a hook's
tries; a hook's own failure backs off from 1 s, up to the resource's ``max_tries``.
A failed hook is not run again before its retry is due, whatever events come
meanwhile (its own status write echoes back at once); a new spec clears that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from minop import invoke as inv
from minop import status as st
from minop import verdict
from minop.apply import content_hash
from minop.errors import PermanentError
from minop.events import WARNING
from minop.keys import Key
from minop.kube import Obj
from minop.log import fields
from minop.queue import Backoff
from minop.resource import Resource
from minop.runtime import Runtime

log = logging.getLogger("minop.reconcile")  # the reconciler's log, as users filter it

FENCED_RETRY = 2.0  # seconds before a fenced pass is tried again (leadership may return)


def log_fields(key: Key, plugin: str, hook: str = "") -> dict[str, str]:
    return fields(
        kind=key.kind.kind, namespace=key.namespace, name=key.name, plugin=plugin, hook=hook
    )


class Failures:
    """One resource's failed hooks: their tries, when each may run again, and their report."""

    def __init__(
        self,
        runtime: Runtime,
        plugin: str,
        resource: Resource,
        write_status: Callable[[Obj, dict[str, Any]], None],
        clock: Callable[[], float],
    ) -> None:
        self.rt, self.plugin, self.resource = runtime, plugin, resource
        self._write_status = write_status  # the reconciler's: it keeps the cache current
        self._clock = clock
        self.controller = resource.kind.kind.lower()
        self.api_backoff = Backoff(0.005, 1000.0)  # API trouble: never uses up hook tries
        self.hook_backoff = Backoff(1.0, 300.0)  # TemporaryError and hook failures
        self._tried_spec: dict[Key, str] = {}
        self._not_before: dict[Key, float] = {}
        self._lock = threading.Lock()

    def tries(self, key: Key) -> int:
        """How many times the hook failed since it last succeeded (its context's retry)."""
        return self.hook_backoff.failures(key)

    def new_spec(self, key: Key, spec: dict[str, Any]) -> None:
        """A spec not tried before gets the full tries again, at once."""
        h = content_hash(spec)
        with self._lock:
            if self._tried_spec.get(key) != h:
                self._tried_spec[key] = h
                self._not_before.pop(key, None)
                self.hook_backoff.reset(key)

    def due_in(self, key: Key, causes: set[str]) -> float:
        """Seconds until a failed hook's retry is due (0: go). A referenced object that
        changed may be the fix, so it is tried at once."""
        with self._lock:
            at = self._not_before.get(key)
        if at is None or "related" in causes:
            return 0.0
        return max(0.0, at - self._clock())

    def api_delay(self, key: Key, error: BaseException | None) -> float:
        """The API backoff, but never sooner than the server's Retry-After."""
        asked = getattr(error, "retry_after", None) or 0.0
        return max(self.api_backoff.next(key), asked)

    def succeeded(self, key: Key) -> None:
        self.hook_backoff.reset(key)
        self.api_backoff.reset(key)
        with self._lock:
            self._not_before.pop(key, None)

    def forget(self, key: Key) -> None:
        with self._lock:
            self._tried_spec.pop(key, None)
            self._not_before.pop(key, None)
        self.hook_backoff.reset(key)
        self.api_backoff.reset(key)

    def failed(
        self, key: Key, obj: Obj, hook: str, out: inv.Outcome
    ) -> tuple[float | None, inv.Call | None]:
        """Report a failed hook; returns when to try again (None: not until an event)
        and, for a timed-out hook, the thread that keeps its key busy."""
        if out.kind == inv.FENCED:
            log.warning("%s: writes fenced (leadership in doubt); requeued", key)
            return FENCED_RETRY, None
        if out.kind == inv.API:
            backoff = self.api_delay(key, out.error)
            log.warning(
                "%s: API error in %s, retrying in %.3fs: %s",
                key,
                hook,
                backoff,
                out.error,
                extra=log_fields(key, self.plugin, hook),
            )
            self._count("requeue")
            return backoff, None
        tries = self.hook_backoff.failures(key) + 1
        v = verdict.failure(
            out, tries, self.resource.max_tries, True, lambda: self.hook_backoff.next(key)
        )
        self._report(key, obj, hook, out, v)
        delay: float | None = v.delay
        if hook == "minop_finalize" and delay is None and out.kind != inv.PERMANENT:
            delay = self.hook_backoff.next(key)  # past the limit: on, at the capped backoff
        if delay is not None:
            with self._lock:
                self._not_before[key] = self._clock() + delay
        if out.kind == inv.TIMEOUT and out.running is not None:
            return delay, out.running
        return delay, None

    def rejected(self, key: Key, obj: Obj, hook: str, invalid: str) -> None:
        """An object the CRD's schema no longer admits: reported as a permanent error."""
        out = inv.Outcome(inv.PERMANENT, [], PermanentError(invalid))
        self._report(key, obj, hook, out, verdict.failure(out, 1, 1, True, lambda: 0.0))

    def timer_failed(self, key: Key, obj: Obj, name: str, out: inv.Outcome) -> None:
        """A timer's failure: logged and a Warning Event; its next tick is the retry."""
        message = str(out.error) or type(out.error).__name__
        log.warning(
            "%s: timer %s of plugin %s failed (%s): %s",
            key,
            name,
            self.plugin,
            out.kind,
            message,
            exc_info=out.error if out.kind == inv.ERROR else None,
            extra=log_fields(key, self.plugin, "minop_timer"),
        )
        self.rt.recorder.event(obj, WARNING, "TimerFailed", f"timer {name}: {message}")

    def _report(self, key: Key, obj: Obj, hook: str, out: inv.Outcome, v: verdict.Verdict) -> None:
        """Status, Event, log and metrics for a failed hook."""
        extra = log_fields(key, self.plugin, hook)
        if out.kind in (inv.TEMPORARY, inv.PERMANENT):
            log.warning(
                "%s: %s of plugin %s: %s: %s", key, hook, self.plugin, v.reason, v.message,
                extra=extra,
            )  # fmt: skip
        else:
            log.error(
                "%s: %s of plugin %s failed (%s): %s",
                key,
                hook,
                self.plugin,
                v.reason,
                v.message,
                exc_info=out.error if out.kind == inv.ERROR else None,
                extra=extra,
            )
        self.rt.recorder.event(
            obj, WARNING, v.reason, f"{hook.removeprefix('minop_')}: {v.message}"
        )
        self._write_status(obj, st.new_status(obj, [], v.conditions))
        self._count("requeue_after" if out.kind == inv.TEMPORARY and v.delay else "error")
        if out.kind != inv.TEMPORARY or v.delay is None:
            self.rt.metrics.reconcile_errors.inc(controller=self.controller)

    def _count(self, result: str) -> None:
        self.rt.metrics.reconcile_total.inc(controller=self.controller, result=result)
